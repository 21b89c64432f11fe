"""Reason codes of rejected input: stable lower_snake, Prometheus label values and the
`reason` of dead letters (schemas/dead-letter.schema.json lists them; a test keeps both in step).
`app.core.ingest.decode` re-exports them all."""

OVERSIZE, EMPTY, NOT_UTF8, NOT_JSON, NOT_OBJECT = "oversize", "empty", "not_utf8", "not_json", "not_object"
MISSING_FIELD, WRONG_TYPE, OUT_OF_RANGE = "missing_field", "wrong_type", "out_of_range"
BAD_TIMESTAMP, FUTURE_TIMESTAMP, UNKNOWN_TYPE = "bad_timestamp", "future_timestamp", "unknown_type"
LATE = "late"  # the window engine's, not the decoder's
# An unexpected error while processing a record: a bug, kept instead of crashing (the
# decoder's per-element guard and the agents' per-message catch-all).
PROCESSING_ERROR = "processing_error"
RECORD_TOO_LARGE = "record_too_large"  # the outbox's: a record the worker wrote was refused for its size
REASONS = (OVERSIZE, EMPTY, NOT_UTF8, NOT_JSON, NOT_OBJECT, MISSING_FIELD, WRONG_TYPE,
           OUT_OF_RANGE, BAD_TIMESTAMP, FUTURE_TIMESTAMP, UNKNOWN_TYPE, LATE, PROCESSING_ERROR,
           RECORD_TOO_LARGE)
