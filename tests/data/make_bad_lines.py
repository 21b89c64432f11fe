"""Writes bad_lines.ndjson and bad_lines.expected.json next to this script.

One Kafka message per line (the replay tool publishes each line as is): good
request records mixed with the kinds of bad input the decoder must dead-letter.
A script, not a hand-edited file, because one line holds invalid UTF-8 bytes.
Run: .venv/bin/python tests/data/make_bad_lines.py (tests check the files match).

Good event times start at 2025-01-01T00:00:00Z and rise one second per line
(replay interleaves files by time); the future line uses 4102444800 (year 2100).
"""
import json
import pathlib

import orjson

HERE = pathlib.Path(__file__).resolve().parent
BASE_S = 1_735_689_600  # 2025-01-01T00:00:00Z


def _req(line_no: int, **fields) -> dict:
    record = {"ts": BASE_S + line_no, "service": "checkout", "latency_ms": 20.0 + line_no, "status": 200}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}  # `...` removes a field


def _j(obj) -> bytes:
    return orjson.dumps(obj)


def lines() -> list[tuple[bytes, list[str], int]]:
    """(message bytes, expected reasons, expected good events) per line, line 1 first.

    The first argument of `_req` is the line number; it sets the good event time.
    """
    return [
        (_j(_req(1)), [], 1),  # the three timestamp forms: epoch s, epoch ms, RFC 3339
        (_j(_req(2, ts=(BASE_S + 2) * 1000 + 500, service="cart")), [], 1),
        (_j(_req(3, ts="2025-01-01T00:00:03.250Z", service="search", status=503)), [], 1),
        (b'{"ts": 1735689604, "service": "checkout", "latency_ms": 12', ["not_json"], 0),
        (b"42", ["not_object"], 0),
        (_j(_req(6, status=...)), ["missing_field"], 0),
        (_j(_req(7, latency_ms="12")), ["wrong_type"], 0),
        (_j(_req(8, status=700)), ["out_of_range"], 0),
        (_j(_req(9, latency_ms=-3)), ["out_of_range"], 0),
        (_j(_req(10, ts="2025-01-01T00:00:10")), ["bad_timestamp"], 0),  # naive: no offset
        (_j(_req(11, ts=4_102_444_800)), ["future_timestamp"], 0),  # year 2100
        (_j([_req(12), _req(12, service="cart", status="200"), _req(12, service="search")]),
         ["wrong_type"], 2),  # a batch with one bad element
        (b"\xff\xfe" + _j(_req(13)), ["not_utf8"], 0),
        (_j(_req(14, route="/cart", host="web-7", tags={"canary": True})), [], 1),  # unknown fields
        (b"[]", ["empty"], 0),
        (_j(_req(16, ts=True)), ["wrong_type"], 0),
        (_j([_req(17, service=s) for s in ("checkout", "cart", "search")]), [], 3),
        (b"null", ["not_object"], 0),
        (_j([_req(19), 7, _req(19, service="")]), ["not_object", "out_of_range"], 1),
        (_j(_req(20, service="cart", status=500)), [], 1),
    ]


def write(directory: pathlib.Path = HERE) -> None:
    rows = lines()
    (directory / "bad_lines.ndjson").write_bytes(b"".join(raw + b"\n" for raw, _, _ in rows))
    expected = [{"line": i, "reasons": reasons, "good_events": good}
                for i, (_, reasons, good) in enumerate(rows, start=1)]
    text = "[\n" + ",\n".join(json.dumps(row) for row in expected) + "\n]\n"  # a row per line
    (directory / "bad_lines.expected.json").write_text(text)


if __name__ == "__main__":
    write()
