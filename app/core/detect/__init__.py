"""Detection: baselines, dips, the correlator's four verdicts, incidents and their state."""
