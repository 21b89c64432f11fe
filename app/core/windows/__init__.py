"""Event-time windows: alignment and watermarks, one input partition's state and offsets,
and the joiner's completeness rule (merger)."""
