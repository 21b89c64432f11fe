"""Batched framings of bench data: JSON arrays and NDJSON decode back to the same events."""
import orjson

from app.bench.data import frame_batches
from app.core.ingest.decode import DecodeLimits, decode_requests

EVENTS = [{"ts": 1_700_000_000 + i, "service": "checkout", "latency_ms": 10.0 + i, "status": 200}
          for i in range(250)]


def test_arrays_and_ndjson_hold_batch_events_per_message_and_decode_alike():
    encoded = [orjson.dumps(e) for e in EVENTS]
    for framing in ("array", "ndjson"):
        messages = frame_batches(encoded, 100, framing)
        assert len(messages) == 3
        decoded = []
        for m in messages:
            events, rejected = decode_requests(m, 1_800_000_000.0, DecodeLimits())
            assert rejected == []
            decoded += events
        assert [e.latency_ms for e in decoded] == [e["latency_ms"] for e in EVENTS]
