"""CX lens maths: per (window, cohort, partition) accumulator, its partial, the exact merge.

The unit is the user: counts are over sessions and page views of one cohort. Definitions:

- `sessions`: distinct session ids with any event in the window (a session spanning two
  windows counts in both). `frustrated_sessions`: distinct sessions with >= 1 frustration
  event; `frustration_events`: events per frustration type.
- Views are keyed by `view_id`, or by `session_id` when an event has none (one view per
  session then). A view is abandoned when its first `abandon` is earlier in event time than
  its first `complete` (or it never completed in this window); it is complete when it
  completed at or before its first abandon. Event time, not arrival order, so the verdict
  does not depend on batch boundaries or replays; a tie counts as complete. The verdict
  is per window: producers that send `abandon` only for views that never completed (the
  Google definition) get exact counts whatever the window boundaries.
- `services`: service -> number of distinct views whose events named it.

Partials merge exactly when RUM is keyed by session or by cohort: a session then lives in
one partition, so per-partition distinct sets are disjoint and their sizes add. Otherwise
a session (or view) whose events land in k partitions is counted once per partition: over
by at most a factor k <= min(partitions, its events); a split view can count as both
abandoned and complete. See docs/VENDORS.md (producers).
"""
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.digest import (DEFAULT_COMPRESSION, StoredDigest, digest_to_wire, merge_wire,
                             quantile_key)
from app.core.digest import quantiles as digest_quantiles
from app.core.events import FRUSTRATION_TYPES, RumEvent

LENS = "cx"
SCHEMA_VERSION = 2  # of the partial (schemas/cx-partial.schema.json): 2 = binary digests
STATE_VERSION = 2  # of the durable table value (`to_state`): 2 = binary digests, 1 = wire dicts
_READABLE_STATE_VERSIONS = (1, 2)
_FRUSTRATION = frozenset(FRUSTRATION_TYPES)


class CxAccumulator:
    """Sessions, frustration, abandonment, TTI and web vitals of one (window, cohort, partition).

    An accumulator restored with `from_state` re-emits a byte-identical partial (digests are
    stored in their exact binary form, see `StoredDigest`).
    """

    __slots__ = ("window_start_s", "compression", "sessions", "page_views",
                 "frustrated_sessions", "frustration_events", "views", "view_services",
                 "_tti", "_vitals")

    def __init__(self, window_start_s: int, compression: int = DEFAULT_COMPRESSION) -> None:
        self.window_start_s = window_start_s
        self.compression = compression
        self.sessions: set[str] = set()
        self.page_views = 0
        self.frustrated_sessions: set[str] = set()
        self.frustration_events: Counter[str] = Counter()
        self.views: dict[str, list[float | None]] = {}  # view -> [first complete, first abandon]
        self.view_services: set[tuple[str, str]] = set()  # (view, service)
        self._tti = StoredDigest(compression)
        self._vitals: dict[str, StoredDigest] = {}

    def fold(self, events: Sequence[RumEvent]) -> None:
        """Fold one batch, one digest update per digest. All or nothing: on ValueError (an
        event before the window start, a missing or non-finite measure) nothing changes."""
        tti: list[float] = []
        vitals: dict[str, list[float]] = {}
        for ev in events:
            _check(ev, self.window_start_s)
            if ev.type == "interactive":
                tti.append(ev.tti_ms)
            elif ev.type == "web_vital":
                vitals.setdefault(ev.name, []).append(ev.value)
        if tti:
            self._tti.live()  # a corrupt restored digest raises here, before any change
        for name in vitals.keys() & self._vitals.keys():
            self._vitals[name].live()
        for ev in events:  # validated and loaded: from here on nothing raises
            self._fold_counts(ev)
        if tti:
            self._tti.add(tti)
        for name, values in vitals.items():
            digest = self._vitals.get(name)
            if digest is None:
                digest = self._vitals[name] = StoredDigest(self.compression)
            digest.add(values)

    def _fold_counts(self, ev: RumEvent) -> None:
        self.sessions.add(ev.session_id)
        view = ev.view_id if ev.view_id is not None else ev.session_id
        kind = ev.type
        if kind == "page_view":
            self.page_views += 1
        elif kind in _FRUSTRATION:
            self.frustrated_sessions.add(ev.session_id)
            self.frustration_events[kind] += 1
        elif kind == "complete" or kind == "abandon":
            marks = self.views.setdefault(view, [None, None])
            slot = 0 if kind == "complete" else 1
            if marks[slot] is None or ev.ts_s < marks[slot]:
                marks[slot] = ev.ts_s
        for service in ev.services:
            self.view_services.add((view, service))

    @property
    def abandons(self) -> int:
        return sum(1 for c, a in self.views.values() if a is not None and (c is None or a < c))

    @property
    def completes(self) -> int:
        return sum(1 for c, a in self.views.values() if c is not None and (a is None or c <= a))

    def services(self) -> dict[str, int]:
        counts = Counter(service for _view, service in self.view_services)
        return dict(sorted(counts.items()))

    def _vital_states(self) -> dict[str, Any]:
        return {name: self._vitals[name].to_state() for name in sorted(self._vitals)}

    def to_state(self) -> dict[str, Any]:
        """JSON-able value for the durable table; `from_state(s).to_state() == s`."""
        return {
            "state_version": STATE_VERSION,
            "window_start": self.window_start_s,
            "compression": self.compression,
            "sessions": sorted(self.sessions),
            "page_views": self.page_views,
            "frustrated_sessions": sorted(self.frustrated_sessions),
            "frustration_events": dict(sorted(self.frustration_events.items())),
            "views": [[v, c, a] for v, (c, a) in sorted(self.views.items())],
            "view_services": [list(p) for p in sorted(self.view_services)],
            "tti_ms_digest": self._tti.to_state(),
            "web_vitals": self._vital_states(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "CxAccumulator":
        try:
            if state["state_version"] not in _READABLE_STATE_VERSIONS:
                raise ValueError(f"unknown CX state version {state['state_version']!r}")
            acc = cls(state["window_start"], state["compression"])
            acc.sessions = set(state["sessions"])
            acc.page_views = state["page_views"]
            acc.frustrated_sessions = set(state["frustrated_sessions"])
            acc.frustration_events = Counter(state["frustration_events"])
            acc.views = {v: [c, a] for v, c, a in state["views"]}
            acc.view_services = {(v, s) for v, s in state["view_services"]}
            acc._tti = StoredDigest.restore(state["tti_ms_digest"])
            acc._vitals = {name: StoredDigest.restore(stored)
                           for name, stored in state["web_vitals"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed CX accumulator state: {exc!r}") from exc
        return acc

    def to_partial(self, cohort: str, partition: int, window_s: int) -> dict[str, Any]:
        """The partial summary (schemas/cx-partial.schema.json) for the summaries topic."""
        return {
            "schema_version": SCHEMA_VERSION,
            "lens": LENS,
            "subject": cohort,
            "window_start": self.window_start_s,
            "window_end": self.window_start_s + window_s,
            "partition": partition,
            "sessions": len(self.sessions),
            "page_views": self.page_views,
            "frustrated_sessions": len(self.frustrated_sessions),
            "frustration_events": dict(sorted(self.frustration_events.items())),
            "abandons": self.abandons,
            "completes": self.completes,
            "tti_ms_digest": self._tti.to_state(),  # binary: only the joiner reads them
            "web_vitals": self._vital_states(),
            "services": self.services(),
        }


def _check(ev: RumEvent, window_start_s: int) -> None:
    if ev.ts_s < window_start_s:
        raise ValueError(f"event at {ev.ts_s} before window start {window_start_s}")
    if ev.type == "interactive" and not _finite(ev.tti_ms):
        raise ValueError(f"interactive event without a finite tti_ms: {ev.tti_ms!r}")
    if ev.type == "web_vital" and (not isinstance(ev.name, str) or not _finite(ev.value)):
        raise ValueError(f"web_vital event needs a name and a finite value: {ev!r}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ---- merge (joiner side) ----------------------------------------------------------------
DEFAULT_TTI_QUANTILES = (0.5, 0.75, 0.95)
DEFAULT_VITAL_QUANTILE = 0.75  # web vitals are judged at p75 by every RUM product


def merge_cx_partials(
    partials: Sequence[Mapping[str, Any]],
    tti_quantiles: Sequence[float] = DEFAULT_TTI_QUANTILES,
    vital_quantile: float = DEFAULT_VITAL_QUANTILE,
    compression: int = DEFAULT_COMPRESSION,
) -> dict[str, Any]:
    """Merge the partials of one (cohort, window), one per partition, into the merged window.

    Counts add (exact when RUM is keyed by session or cohort, see the module docstring);
    digests merge in partition order, so a re-merge gives identical bytes.
    """
    if not partials:
        raise ValueError("no partials to merge")
    try:
        return _merge(partials, tti_quantiles, vital_quantile, compression)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed CX partial: {exc!r}") from exc


def _merge(partials, tti_quantiles, vital_quantile, compression) -> dict[str, Any]:
    keys = {(p["lens"], p["subject"], p["window_start"], p["window_end"]) for p in partials}
    if len(keys) != 1 or next(iter(keys))[0] != LENS:
        raise ValueError(f"partials of several CX windows or cohorts (or not CX): {keys}")
    ordered = sorted(partials, key=lambda p: p["partition"])
    partitions = [p["partition"] for p in ordered]
    if len(set(partitions)) != len(partitions):
        raise ValueError(f"duplicate partition among partials: {partitions}")
    _lens, subject, start, end = next(iter(keys))
    head = {"lens": LENS, "subject": subject, "window_start": start, "window_end": end,
            "partitions": partitions}
    return {**head, **_combine(ordered, "web_vitals", tti_quantiles, vital_quantile,
                               compression)}


def rolling_cx(
    merged_windows: Sequence[Mapping[str, Any]],
    tti_quantiles: Sequence[float] = DEFAULT_TTI_QUANTILES,
    vital_quantile: float = DEFAULT_VITAL_QUANTILE,
    compression: int = DEFAULT_COMPRESSION,
) -> dict[str, Any]:
    """Rolling view over merged windows of one cohort (pass the last N).

    Counts add and digests merge exactly. Distinct sessions cannot: merged windows keep
    no ids, so a session active in k windows is counted k times. So we report
    `session_windows` (the sum of per-window distinct sessions, i.e. (session, window)
    pairs) and `frustrated_session_windows`, and bound the true distinct count between
    `distinct_sessions_min` (the busiest window) and `distinct_sessions_max` (the sum).
    `frustration_ratio` = frustrated_session_windows / session_windows: per-window ratios
    weighted by sessions. It is below the share of distinct sessions ever frustrated when
    sessions span windows and are frustrated in only some of them.
    """
    if not merged_windows:
        raise ValueError("no windows to roll up")
    try:
        return _roll(merged_windows, tti_quantiles, vital_quantile, compression)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed CX merged window: {exc!r}") from exc


def _roll(merged_windows, tti_quantiles, vital_quantile, compression) -> dict[str, Any]:
    subjects = {w["subject"] for w in merged_windows}
    if len(subjects) != 1:
        raise ValueError(f"rolling view over several cohorts: {sorted(subjects)}")
    ordered = sorted(merged_windows, key=lambda w: w["window_start"])
    starts = [w["window_start"] for w in ordered]
    if len(set(starts)) != len(starts):
        raise ValueError(f"duplicate window among merged windows: {starts}")
    rolled = _combine(ordered, "web_vitals_digests", tti_quantiles, vital_quantile,
                      compression)
    per_window = [w["sessions"] for w in ordered]
    head = {"lens": LENS, "subject": ordered[0]["subject"], "window_start": starts[0],
            "window_end": ordered[-1]["window_end"], "windows": len(ordered),
            "session_windows": rolled.pop("sessions"),
            "frustrated_session_windows": rolled.pop("frustrated_sessions"),
            "distinct_sessions_min": max(per_window), "distinct_sessions_max": sum(per_window)}
    return {**head, **rolled}


def _combine(parts: Sequence[Mapping[str, Any]], vitals_field: str,
             tti_quantiles: Sequence[float], vital_quantile: float,
             compression: int) -> dict[str, Any]:
    """Sum counts, merge digests, derive ratios and quantiles (partials or merged windows)."""
    def total(field: str) -> int:
        return sum(p[field] for p in parts)

    sessions, page_views = total("sessions"), total("page_views")
    frustrated, abandons = total("frustrated_sessions"), total("abandons")
    frustration = Counter(dict.fromkeys(FRUSTRATION_TYPES, 0))  # stable label set
    services: Counter[str] = Counter()
    for p in parts:
        frustration.update(p["frustration_events"])
        services.update(p["services"])
    tti = merge_wire([p["tti_ms_digest"] for p in parts], compression)
    names = sorted({name for p in parts for name in p[vitals_field]})
    vitals = {n: merge_wire([p[vitals_field][n] for p in parts if n in p[vitals_field]],
                            compression) for n in names}
    vital_key = quantile_key(vital_quantile)
    return {
        "sessions": sessions,
        "page_views": page_views,
        "frustrated_sessions": frustrated,
        "frustration_events": dict(sorted(frustration.items())),
        "abandons": abandons,
        "completes": total("completes"),
        "frustration_ratio": frustrated / sessions if sessions else None,
        "abandonment_ratio": abandons / page_views if page_views else None,
        "tti_ms": digest_quantiles(tti, tti_quantiles),
        "web_vital_quantile": vital_key,
        "web_vitals": {n: digest_quantiles(d, [vital_quantile])[vital_key]
                       for n, d in vitals.items()},
        "services": dict(sorted(services.items())),
        "tti_ms_digest": digest_to_wire(tti),
        "web_vitals_digests": {n: digest_to_wire(d) for n, d in vitals.items()},
    }
