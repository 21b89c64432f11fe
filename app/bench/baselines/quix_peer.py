"""Row 6, the peer: the SRE-lens aggregation in Quix Streams.

A tumbling 60 s window per service (the message key), event time from `ts`, a 10 s grace
(lensbridge's default), and a `reduce` whose state holds requests, errors and a t-digest.
Quix keeps window state in RocksDB with a changelog topic and (de)serializes the state
value with orjson on every event, so the digest travels as bytes: the reducer uses
`fastdigest` (Rust, the digest lensbridge uses, same max centroids) in its compact binary
form (`to_bytes`, base64 in the JSON state): the cheapest t-digest state we found for Quix
(the dict form costs ~200 us per event at 500 centroids).

`--framing array`: JSON arrays of events without keys, as lensbridge row 2a reads them.
Quix then needs `apply(expand=True)` to split a message into rows, `set_timestamp` for
event time, and `group_by("service")` to aggregate per service: a repartition topic, one
extra produce and consume per event (lensbridge merges per-partition partials instead).
The repartition interleaves the 4 input partitions, so event time arrives out of order by
more than the 10 s grace (Quix then skips those events as late, logging each): this
framing runs with a 1-hour grace so that Quix does the same work as the others.
"""
from __future__ import annotations

import base64
import logging

from fastdigest import TDigest
from quixstreams import Application

from app.bench.baselines.common import Meter, parser


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--framing", choices=("single", "array"), default="single")
    args = p.parse_args()
    compression = args.compression
    meter = Meter(args.events)
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      state_dir=f"{args.data_dir}/{args.group}", loglevel="WARNING")
    if args.framing == "single":
        topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json",
                          timestamp_extractor=lambda value, headers, ts, ts_type: int(value["ts"] * 1000))
    else:
        topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="json")

    def initializer(value: dict) -> dict:
        digest = TDigest(max_centroids=compression)
        digest.update(value["latency_ms"])
        return {"requests": 1, "errors": int(value["status"] >= 500),
                "digest": base64.b64encode(digest.to_bytes()).decode()}

    def reducer(agg: dict, value: dict) -> dict:
        digest = TDigest.from_bytes(base64.b64decode(agg["digest"]))
        digest.update(value["latency_ms"])
        return {"requests": agg["requests"] + 1, "errors": agg["errors"] + int(value["status"] >= 500),
                "digest": base64.b64encode(digest.to_bytes()).decode()}

    def count(value: dict) -> None:
        if meter.add(1):
            app.stop()

    sdf = app.dataframe(topic)
    if args.framing == "array":
        sdf = sdf.apply(lambda batch: batch, expand=True)
        sdf = sdf.set_timestamp(lambda value, key, ts, headers: int(value["ts"] * 1000))
        sdf = sdf.group_by("service")
    sdf = sdf.update(count)
    grace_ms = 10_000 if args.framing == "single" else 3_600_000
    sdf = sdf.tumbling_window(duration_ms=args.window_s * 1000, grace_ms=grace_ms) \
        .reduce(reducer=reducer, initializer=initializer).final()
    app.run()
    logging.shutdown()
    meter.report(changelog_prefix=f"changelog__{args.group}")


if __name__ == "__main__":
    main()
