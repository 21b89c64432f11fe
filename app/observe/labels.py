"""Bounded Prometheus label values: capped per kind, expiring when idle, short.

A stream with unbounded subjects must not become an unbounded number of series:
each kind (services, cohorts) has its own cap, values unseen for a while expire
(the caller removes their series), and long values are shortened with a hash.
Time is a parameter (`now_s`), as in the core.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict

from app.core.windows.partition import OVERFLOW_SUBJECT

# The overflow series. The lens core escapes real subjects that start with "_" (a service
# named "_other" is "__other" everywhere), so "_other" here is always the overflow: the lens's
# own overflow bucket or a value this limiter refused.
OVERFLOW_LABEL = OVERFLOW_SUBJECT
MAX_LABEL_CHARS = 64


def label_value(value: str) -> str:
    """`value`, or for one longer than 64 characters its first 64 + "~" + 8 hex of its sha256.

    Stable across workers and restarts; a value of 64 characters or fewer is never changed,
    so a shortened label (73 characters) cannot equal a real one."""
    if len(value) <= MAX_LABEL_CHARS:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{value[:MAX_LABEL_CHARS]}~{digest}"


class LabelLimiter:
    """At most `limit` distinct label values of one kind; a value unseen for `idle_s` expires.

    Values beyond the cap map to `_other` until older ones expire: `expire(now_s)` returns the
    values that went idle so the caller can remove their series. Time is a parameter."""

    def __init__(self, limit: int, idle_s: float = float("inf")):
        self.limit = limit
        self.idle_s = idle_s
        self._last_seen: OrderedDict[str, float] = OrderedDict()  # oldest first

    def __call__(self, value: str, now_s: float = 0.0) -> str:
        label = label_value(value)
        if label == OVERFLOW_LABEL:
            return label
        if label in self._last_seen:
            self._last_seen[label] = now_s
            self._last_seen.move_to_end(label)
            return label
        if len(self._last_seen) >= self.limit:
            return OVERFLOW_LABEL
        self._last_seen[label] = now_s
        return label

    def expire(self, now_s: float) -> list[str]:
        """Forget (and return) the values not seen for `idle_s`; oldest first."""
        gone = []
        while self._last_seen:
            label, seen_s = next(iter(self._last_seen.items()))
            if now_s - seen_s < self.idle_s:
                break
            del self._last_seen[label]
            gone.append(label)
        return gone

    @property
    def seen(self) -> set[str]:
        return set(self._last_seen)
