"""Row 4, Faust's own ceiling: an agent that only iterates the stream and orjson-decodes."""
from __future__ import annotations

import os

import faust
import orjson

from app.bench.baselines.common import Meter, faust_security, parser, run_faust_worker


def build(args) -> faust.App:
    os.makedirs(args.data_dir, exist_ok=True)
    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", store="memory://",
                    datadir=os.path.join(args.data_dir, args.group), autodiscover=False,
                    topic_partitions=4, consumer_auto_offset_reset="earliest", web_enabled=False,
                    **faust_security())
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw")
    meter = Meter(args.events)

    @app.agent(topic, name="bench.iterate")
    async def iterate(stream):
        async for value in stream:
            orjson.loads(value)
            if meter.add(1):
                meter.report()
                os._exit(0)

    return app


def main() -> None:
    args = parser(__doc__).parse_args()
    run_faust_worker(build(args))


if __name__ == "__main__":
    main()
