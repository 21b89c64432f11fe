"""Is the worker making progress? A pure decision over what the runners reported.

"Stalled" means input is waiting (unread lag on an assigned partition, or buffered input
not yet durable) and nothing became durable for more than `stall_s`: a broker outage, a
wedged consumer thread, a flush that never completes. An idle worker is not stalled, and
neither is one that just received input (the clock starts when input starts waiting).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class SourceProgress:
    """One runner's report: since when input waits (None: nothing waits), last durable time."""

    waiting_since_s: float | None
    progress_s: float


@dataclass(frozen=True)
class Health:
    stalled: bool
    progress_age_s: float  # the longest a waiting source went without durable progress; 0 if none waits
    reason: str


def decide(sources: Mapping[str, SourceProgress], now_s: float, stall_s: float) -> Health:
    """Stalled if some source has input waiting and nothing durable for more than `stall_s`."""
    ages = {name: now_s - max(s.waiting_since_s, s.progress_s)
            for name, s in sources.items() if s.waiting_since_s is not None}
    if not ages:
        return Health(False, 0.0, "no input waiting")
    name = max(ages, key=lambda n: ages[n])
    age = max(0.0, ages[name])
    if age > stall_s:
        return Health(True, age, f"{name}: input waiting and nothing durable for {age:.1f} s "
                                 f"(LENSBRIDGE_STALL_SECONDS={stall_s:g}); is Kafka reachable?")
    return Health(False, age, f"progressing: input waiting at most {age:.1f} s since the last durable write")
