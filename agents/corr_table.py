"""The correlator's state in the joiner's table: one key per (lens, subject) and a global key.

Keys and the crash-safe value format are app/core/detect/corr_state.py's. This adapter remembers
what the table holds (the last complete write's number, each subject's part as written, the
subjects evicted by the last write) so that a write covers only what changed. Before, the
state was one value under "corr", which grew past the state limit at a few thousand
services: it is still read, and replaced by the per-subject keys at the next write.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson

from app.core.detect import corr_state
from app.core.detect.correlate import Correlator
from app.core.detect.dips import DetectionConfig
from app.core.joiner_table import LEGACY_CORRELATOR

log = logging.getLogger("lensbridge.joiner")



def _dumps(value: dict) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class CorrelatorTable:
    def __init__(self) -> None:
        self.seq = 0  # the last complete write
        self.written: dict[str, bytes] = {}  # subject key -> its current part, as written
        self.evicted: set[str] = set()  # emptied by the last write: tombstoned by the next
        self.legacy = False  # the table still holds the single legacy value
        self.rewrite = False  # the next write covers every subject and every stale key

    def restore(self, values: dict[str, Any], cfg: DetectionConfig) -> Correlator:
        """The correlator from the table's `corr` and `corr|...` values (parsed JSON)."""
        legacy = values.pop(LEGACY_CORRELATOR, None)
        # The legacy value is removed only after every per-subject key of its replacement was
        # written (the same ordered write): while it exists, it is the whole state.
        self.legacy = legacy is not None
        self.seq, global_part, parts, torn = corr_state.restore(values.pop(corr_state.GLOBAL_KEY, None), values)
        self.written = {corr_state.subject_key(*pair): _dumps(part) for pair, part in parts.items()}
        self.evicted = {k for k, v in values.items() if isinstance(v, dict) and v.get("cur") is None}
        self.rewrite = self.legacy or torn
        try:
            if legacy is not None:
                return Correlator(cfg, legacy)
            return Correlator.from_parts(global_part, parts, cfg)
        except ValueError as exc:  # e.g. LENSBRIDGE_WINDOW_SECONDS changed: old baselines mean nothing
            log.warning("correlator state not reusable (%s); starting with fresh baselines", exc)
            self.rewrite = True  # evicts the stale keys at the first write
            return Correlator(cfg)

    def writes(self, corr: Correlator) -> dict[str, bytes | None]:
        """The table writes, in order: the previous write's evictions tombstoned, the subjects
        that changed (evicted ones as empty parts), the global part last (then the legacy
        value's tombstone). After a restore from the legacy value, a cut-short write or a
        reset: every subject and every stale key."""
        seq = self.seq + 1
        changed = corr.take_changed()
        if self.rewrite:
            changed |= corr.subjects() | {p for k in self.written if (p := corr_state.parse_key(k))}
        writes: dict[str, bytes | None] = dict.fromkeys(sorted(self.evicted))
        self.evicted = set()
        for lens, subject in sorted(changed):
            key, part = corr_state.subject_key(lens, subject), corr.subject_state(lens, subject)
            prev = self.written.pop(key, None)
            cur = None if part is None else _dumps(part)
            if cur is not None:
                self.written[key] = cur
            elif prev is None:
                continue  # nothing stored for it
            else:
                self.evicted.add(key)  # idle and nothing open
            writes.pop(key, None)
            writes[key] = corr_state.envelope(seq, cur, prev)
        writes[corr_state.GLOBAL_KEY] = _dumps(corr_state.global_envelope(seq, corr.global_state()))
        if self.legacy:
            writes[LEGACY_CORRELATOR] = None
        self.legacy = self.rewrite = False
        self.seq = seq
        return writes
