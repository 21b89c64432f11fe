"""The two lenses' accumulators and exact merges: SRE (latency digests, errors,
availability) and CX (sessions, frustration, abandonment, TTI)."""
