"""The agents' per-message safety net: what a producer wrote never stops a stream.

The decoder is meant to be total (every byte string gives events and dead letters).
Should a message still make decoding or folding raise, the agent turns that one
message into a dead letter with reason `processing_error` (its bytes, the
exception's type and where it was raised), moves the invalid counter, and goes on:
the message is acked in order with the rest and contributes no events. Only Kafka
and state-store failures stop a worker.

Each (exception type, source location) is logged once with its traceback, so a
producer repeating one poison message cannot flood the log; the counter
`lensbridge_invalid_events_total{reason="processing_error"}` shows every occurrence.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from app.core.ingest.decode import PROCESSING_ERROR, Rejected
from app.core.ingest.render import raised_at
from app.core.windows.partition import FoldOutcome, PartitionState, partition_prefix

if TYPE_CHECKING:  # the runner imports this module
    from agents.lens import LensRunner
    from agents.pending import Pending

log = logging.getLogger("lensbridge.safety")

MAX_LOGGED_CAUSES = 1024  # distinct (type, location) pairs logged with a traceback
MAX_DETAIL_CHARS = 300  # of the exception's own text, in the dead letter's error
_logged: set[tuple[str, str]] = set()


def log_once(exc: BaseException, stage: str) -> None:
    """Log `exc` with its traceback the first time its type is raised at its location."""
    cause = (type(exc).__name__, raised_at(exc))
    if cause in _logged:
        return
    if len(_logged) < MAX_LOGGED_CAUSES:
        _logged.add(cause)
    log.error("%s raised %s at %s; the message is dead-lettered as %s and the stream goes on "
              "(logged once per exception type and location; lensbridge_invalid_events_total "
              "counts every one). This is a lensbridge bug: please report it with the dead letter.",
              stage, cause[0], cause[1], PROCESSING_ERROR, exc_info=exc)


def _detail(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails still has a type
        text = "(its text could not be rendered)"
    if len(text) > MAX_DETAIL_CHARS:
        text = text[:MAX_DETAIL_CHARS] + "..."
    # Lone surrogates would make the dead letter itself unencodable.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def processing_error(exc: BaseException, stage: str, raw: bytes | None) -> Rejected:
    """The dead letter of a message whose `stage` (e.g. "sre lens decode") raised `exc`."""
    log_once(exc, stage)
    error = (f"{type(exc).__name__} during {stage} at {raised_at(exc)}: {_detail(exc)}; lensbridge could "
             f"not process this message (a bug: report it with this dead letter); the stream went on")
    return Rejected(PROCESSING_ERROR, error, raw if raw is not None else b"")


def add_outcome(total: FoldOutcome, part: FoldOutcome) -> None:
    total.late.extend(part.late)
    total.folded += part.folded
    total.skipped += part.skipped
    total.overflow += part.overflow
    total.forced_windows += part.forced_windows


def fold_isolating(restore: Callable[[], PartitionState], write: Callable[[dict], list],
                   messages: list[tuple[int, list]], now_s: float,
                   on_culprit: Callable[[int, BaseException], None]) -> tuple[PartitionState, FoldOutcome, list]:
    """Fold `messages` one by one into the state `restore()` rebuilds from the table.

    Each message's effects are written (`write`) before the next is folded, so when one
    raises, `restore()` gives back the state just before it: the culprit (reported by its
    index) then folds as a message without events, so its offset counts as processed and a
    restart skips it, while every other message's events are counted once."""
    state, total, futures = restore(), FoldOutcome(), []
    for index, (offset, events) in enumerate(messages):
        try:
            part = state.fold([(offset, events)], now_s)
        except Exception as exc:  # noqa: BLE001 - the safety net itself
            on_culprit(index, exc)
            state = restore()
            part = state.fold([(offset, [])], now_s)
        add_outcome(total, part)
        futures += write(state.checkpoint())
    return state, total, futures


async def refold(runner: LensRunner, partition: int, pending: Pending, now_s: float) -> tuple:
    """A LensRunner's flush after its batched fold raised: back to the table's state, then
    `fold_isolating`, dead-lettering each message that raises. (None, None, []) when a
    rebalance came first: the input stays unacked and the next owner reads it again."""
    generation = runner.generation
    previous = runner.inflight.get(partition)
    if previous is not None:
        await previous  # the previous flush's tombstones land in the table first
    if generation != runner.generation:
        return None, None, []
    lens = runner.lens

    def restore() -> PartitionState:
        state = runner.states[partition] = PartitionState.restore(
            lens.spec, runner.spec, partition, runner.settings.max_subjects,
            runner.store.items(partition_prefix(lens.name, partition)), runner.clock())
        return state

    def culprit(index: int, exc: BaseException) -> None:
        bad = processing_error(exc, f"{lens.name} lens fold", pending.raw[index])
        pending.dead_letters.append(
            runner.dead_letter_at(bad, partition, pending.messages[index][0], pending.keys[index]))

    return fold_isolating(restore, lambda writes: runner.store.write(partition, writes),
                          pending.messages, now_s, culprit)
