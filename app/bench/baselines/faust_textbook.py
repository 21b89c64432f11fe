"""Row 3, the textbook Faust approach: a windowed (tumbling) table updated per event.

Per event: decode, read the service's value for the event's window, update its pure-Python
`tdigest.TDigest` (the `tdigest` package, its default compression) and counts, write it
back. Faust serializes the value into a changelog record on every write: that per-event
serialization and produce is the textbook cost. The table is keyed by service and the
topic is keyed by service, so no repartition is needed. Windows follow the event's `ts`
(`relative_to` a callable), like lensbridge, not the Kafka timestamp.
"""
from __future__ import annotations

import os
from datetime import timedelta

import faust
import orjson
from faust.serializers import codecs
from tdigest import TDigest

from app.bench.baselines.common import Meter, faust_security, parser, run_faust_worker


class Agg:
    __slots__ = ("requests", "errors", "digest")

    def __init__(self) -> None:
        self.requests, self.errors, self.digest = 0, 0, TDigest()


class AggCodec(codecs.Codec):
    """The table value on the changelog: counts and the digest in `tdigest`'s dict format."""

    def _dumps(self, obj: Agg) -> bytes:
        return orjson.dumps({"requests": obj.requests, "errors": obj.errors, "digest": obj.digest.to_dict()})

    def _loads(self, s: bytes) -> Agg:
        d = orjson.loads(s)
        agg = Agg()
        agg.requests, agg.errors = d["requests"], d["errors"]
        agg.digest.update_from_dict(d["digest"])
        return agg


codecs.register("bench_tdigest", AggCodec())


def build(args) -> faust.App:
    os.makedirs(args.data_dir, exist_ok=True)
    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", store="memory://",
                    datadir=os.path.join(args.data_dir, args.group), autodiscover=False,
                    topic_partitions=4, consumer_auto_offset_reset="earliest", web_enabled=False,
                    **faust_security())
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")
    current_ts = [0.0]  # the event time of the event being processed
    base = app.Table("latency", default=Agg, partitions=4)
    base.value_serializer = "bench_tdigest"  # Faust derives it from value_type; no codec arg exists
    table = base.tumbling(
        args.window_s, expires=timedelta(days=1)).relative_to(lambda event: current_ts[0])
    meter = Meter(args.events)

    @app.agent(topic, name="bench.textbook")
    async def aggregate(stream):
        async for value in stream:
            event = orjson.loads(value)
            current_ts[0] = event["ts"]
            service = event["service"]
            agg = table[service].value()
            agg.requests += 1
            if event["status"] >= 500:
                agg.errors += 1
            agg.digest.update(event["latency_ms"])
            table[service] = agg
            if meter.add(1):
                await app.producer.flush()  # the changelog is complete before it is measured
                meter.report(changelog_topic=f"{args.group}-latency-changelog")
                os._exit(0)

    return app


def main() -> None:
    args = parser(__doc__).parse_args()
    run_faust_worker(build(args))


if __name__ == "__main__":
    main()
