"""Summaries of py-spy's raw (collapsed) stacks: where a worker spends its samples.

A raw line is `frame;frame;...;leaf count`, outermost frame first, each frame
`function (path:line)` with the path relative to its sys.path entry. Pure functions
(unit-tested); `rows.Profiler` records the file (`py-spy record --gil`: only samples of
the thread holding the GIL, i.e. where the worker's Python CPU time goes).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")
AREAS = (  # (area, path prefix as py-spy prints it): the first match names a frame's area
    ("lensbridge core", "app/core/"), ("lensbridge agents", "agents/"), ("lensbridge app", "app/"),
    ("faust", "faust/"), ("mode", "mode/"), ("aiokafka", "aiokafka/"), ("kafka-python", "kafka/"),
    ("prometheus", "prometheus_client/"), ("asyncio", "asyncio/"), ("logging", "logging/"),
)


# Frames every stack passes through (interpreter start, the event loop): left out of the
# inclusive list, where they would only push the informative frames down.
SPINE = frozenset({
    "_run_module_as_main (<frozen runpy>)", "_run_code (<frozen runpy>)", "<module> (app/cli.py)",
    "main (app/cli.py)", "run_worker (app/worker.py)", "Worker.execute_from_commandline (mode/worker.py)",
    "BaseEventLoop.run_until_complete (asyncio/base_events.py)", "BaseEventLoop.run_forever (asyncio/base_events.py)",
    "BaseEventLoop._run_once (asyncio/base_events.py)", "Handle._run (asyncio/events.py)",
    "Thread._bootstrap (threading.py)", "Thread._bootstrap_inner (threading.py)", "Thread.run (threading.py)",
})


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_name(frame: str) -> str:
    """`func (path:line)` -> `func (short/path.py)`: lines merged, paths shortened."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    return f"{m['func']} ({short_path(m['path'])})"


def short_path(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def area(frame: str) -> str:
    """Which package a frame belongs to, from its (py-spy-shortened) path."""
    m = _FRAME.match(frame.strip())
    path = short_path(m["path"]) if m else frame
    for name, prefix in AREAS:
        if path.startswith(prefix):
            return name
    return "python stdlib" if "/" not in path else "other"


def summarize_profile(text: str, top: int = 15) -> dict:
    """Self (leaf) and inclusive sample shares per function (inclusive without `SPINE`),
    and self share per area."""
    stacks = parse_collapsed(text)
    total = sum(count for _, count in stacks)
    if not total:
        return {"samples": 0, "self": [], "inclusive": [], "areas": []}
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        leaf = frames[-1]
        self_counts[frame_name(leaf)] += count
        areas[area(leaf)] += count
        for name in {frame_name(f) for f in frames} - SPINE:
            incl_counts[name] += count

    def share(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(name, round(c / total, 4)) for name, c in counter.most_common(n)]

    return {"samples": total, "self": share(self_counts, top), "inclusive": share(incl_counts, top),
            "areas": share(areas, len(areas))}


def format_profile(title: str, summary: dict) -> str:
    lines = [f"{title}: {summary['samples']} samples",
             "  self time by area: " + ", ".join(f"{a} {s:.0%}" for a, s in summary["areas"]),
             "  top frames by self time:"]
    lines += [f"    {s:6.1%}  {name}" for name, s in summary["self"]]
    lines.append("  top frames by inclusive time:")
    lines += [f"    {s:6.1%}  {name}" for name, s in summary["inclusive"]]
    return "\n".join(lines)


def summarize_file(path: Path, top: int = 15) -> dict:
    return summarize_profile(path.read_text(errors="replace"), top)
