"""CPU per event of lensbridge's own SRE path, without Kafka or Faust.

The same work a worker does for the bench's request data, stage by stage, in one process:
decode each message (`Lens.decode`), fold per flush into `PartitionState` (4 partitions,
messages round-robin as in the batched bench topics), checkpoint (the table values, as
bytes), the closed windows' partials (as the summaries topic carries them, `orjson.dumps`),
then the joiner's side: load the partials, merge each window (`Lens.merge`) and encode the
merged window. `process_time` per stage, divided by the events: what lensbridge's own code
costs per event, beside the ~1.5-3 us of row 5 (aiokafka + orjson + fastdigest, no checks).

`python -m app.bench.core --events 500000 --framing array` prints one JSON line; it runs on
any commit that has `app.lenses`, `PartitionState` and `app.bench.data` (how BENCH.md's
before/after rows were taken, with `git worktree`).
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import orjson

FLUSH_EVENTS = 2000  # the worker's default LENSBRIDGE_FLUSH_EVENTS
PARTITIONS = 4


def _messages(events: int, framing: str, batch: int) -> list[bytes]:
    from app.bench.data import frame_batches, request_events

    encoded = [orjson.dumps(e) for e in request_events(events, now_s=1_800_000_000.0)]
    return encoded if framing == "single" else frame_batches(encoded, batch, framing)


def run(events: int, framing: str, batch: int = 100) -> dict:
    from app.config import window_spec
    from app.core.windows.partition import PartitionState
    from app.core.windows.windows import PartitionWatermark
    from app.lenses import sre_lens
    from app.settings import Settings

    settings = Settings.from_env({})
    lens, spec = sre_lens(settings), window_spec(settings)
    messages = _messages(events, framing, batch)
    states = [PartitionState(lens.spec, spec, p, settings.max_subjects, PartitionWatermark(spec))
              for p in range(PARTITIONS)]
    buffers: list[list] = [[] for _ in range(PARTITIONS)]
    counts = [0] * PARTITIONS
    cpu: dict[str, float] = defaultdict(float)
    partials: dict[tuple, list[bytes]] = defaultdict(list)
    now_s = 1_800_000_000.0
    folded = 0

    def flush(p: int) -> None:
        nonlocal folded
        t0 = time.process_time()
        out = states[p].fold(buffers[p], now_s)
        t1 = time.process_time()
        writes = states[p].checkpoint()
        t2 = time.process_time()
        for key, partial in states[p].closed_partials():
            partials[tuple(key.split("|")[:3])].append(orjson.dumps(partial))
        states[p].drop_closed()
        t3 = time.process_time()
        cpu["fold"] += t1 - t0
        cpu["checkpoint"] += t2 - t1
        cpu["partials"] += t3 - t2
        folded += out.folded
        buffers[p], counts[p] = [], 0
        del writes

    for offset, raw in enumerate(messages):
        p = offset % PARTITIONS
        t0 = time.process_time()
        decoded, rejected = lens.decode(raw, now_s)
        cpu["decode"] += time.process_time() - t0
        if rejected:
            raise RuntimeError(f"bench data rejected: {rejected[0]}")
        buffers[p].append((offset // PARTITIONS, decoded))
        counts[p] += len(decoded)
        if counts[p] >= FLUSH_EVENTS:
            flush(p)
    for p in range(PARTITIONS):
        flush(p)
        states[p].watermark.force_to(float("inf"))  # end of input: every window closes
        flush(p)
    t0 = time.process_time()
    for window_partials in partials.values():
        orjson.dumps(lens.merge([orjson.loads(raw) for raw in window_partials]))
    cpu["joiner merge"] += time.process_time() - t0
    total = sum(cpu.values())
    return {"events": folded, "framing": framing, "windows": len(partials),
            "us_per_event": {stage: round(s / folded * 1e6, 3) for stage, s in cpu.items()}
            | {"total": round(total / folded * 1e6, 3)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--framing", choices=("single", "array", "ndjson"), default="array")
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    print(orjson.dumps(run(args.events, args.framing, args.batch)).decode())


if __name__ == "__main__":
    main()
