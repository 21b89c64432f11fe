"""SLOs and error budgets: definitions, burn rates over window pairs, burn alerts and
their CX check (docs/SLO.md)."""
