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
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, cast

from app.core.ingest.events import FRUSTRATION_TYPES, RumEvent

# The merge and the rolling view live in cx_merge.py; the lens's public face is this module.
from app.core.lenses.cx_merge import DEFAULT_TTI_QUANTILES as DEFAULT_TTI_QUANTILES
from app.core.lenses.cx_merge import DEFAULT_VITAL_QUANTILE as DEFAULT_VITAL_QUANTILE
from app.core.lenses.cx_merge import merge_cx_partials as merge_cx_partials
from app.core.lenses.cx_merge import rolling_cx as rolling_cx
from app.core.lenses.digest import DEFAULT_COMPRESSION, StoredDigest
from app.core.lenses.idset import MAX_SLOT_IDS, MAX_SLOT_PAIRS, id_hash, pack, pack_marks, unpack, unpack_marks
from app.core.numbers import is_finite_number

LENS = "cx"
SCHEMA_VERSION = 2  # of the partial (schemas/cx-partial.schema.json): 2 = binary digests
# Of the durable table value (`to_state`): 3 = ids as packed digests (app/core/lenses/idset.py),
# 2 = id strings and binary digests, 1 = id strings and wire dicts (read, ids hashed on load).
STATE_VERSION = 3
_READABLE_STATE_VERSIONS = (1, 2, 3)
_FRUSTRATION = frozenset(FRUSTRATION_TYPES)


class CxAccumulator:
    """Sessions, frustration, abandonment, TTI and web vitals of one (window, cohort, partition).

    An accumulator restored with `from_state` re-emits a byte-identical partial (digests are
    stored in their exact binary form, see `StoredDigest`). Session and view ids are kept as
    8-byte digests (app/core/lenses/idset.py), at most `max_ids` sessions and views and
    `max_pairs` (view, service) pairs; an event that would add one more is still counted
    everywhere else and moves `ids_over_cap` (in the partial).
    """

    __slots__ = ("window_start_s", "compression", "max_ids", "max_pairs", "sessions", "page_views",
                 "frustrated_sessions", "frustration_events", "views", "view_services",
                 "ids_over_cap", "_pairs", "_tti", "_vitals")

    def __init__(self, window_start_s: int, compression: int = DEFAULT_COMPRESSION,
                 max_ids: int = MAX_SLOT_IDS, max_pairs: int = MAX_SLOT_PAIRS) -> None:
        self.window_start_s = window_start_s
        self.compression = compression
        self.max_ids, self.max_pairs = max_ids, max_pairs
        self.sessions: set[bytes] = set()  # id digests
        self.page_views = 0
        self.frustrated_sessions: set[bytes] = set()
        self.frustration_events: Counter[str] = Counter()
        self.views: dict[bytes, list[float | None]] = {}  # view -> [first complete, first abandon]
        self.view_services: dict[str, set[bytes]] = {}  # service -> views that named it
        self.ids_over_cap = 0  # events whose session, view or (view, service) went untracked
        self._pairs = 0  # (view, service) pairs held
        self._tti = StoredDigest(compression)
        self._vitals: dict[str, StoredDigest] = {}

    def fold(self, events: Sequence[RumEvent]) -> None:
        """Fold one batch, one digest update per digest. All or nothing: on ValueError (an
        event before the window start, a missing or non-finite measure) nothing changes."""
        tti: list[float] = []
        vitals: dict[str, list[float]] = {}
        for ev in events:
            _check(ev, self.window_start_s)
            # _check refused an interactive or web_vital event without its measure
            if ev.type == "interactive":
                tti.append(cast(float, ev.tti_ms))
            elif ev.type == "web_vital":
                vitals.setdefault(cast(str, ev.name), []).append(cast(float, ev.value))
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
        session = id_hash(ev.session_id)
        view = session if ev.view_id is None else id_hash(ev.view_id)
        over = False
        if session not in self.sessions:
            if len(self.sessions) < self.max_ids:
                self.sessions.add(session)
            else:
                over = True
        kind = ev.type
        if kind == "page_view":
            self.page_views += 1
        elif kind in _FRUSTRATION:
            if session in self.sessions:
                self.frustrated_sessions.add(session)
            self.frustration_events[kind] += 1
        elif kind == "complete" or kind == "abandon":
            marks = self.views.get(view)
            if marks is None and len(self.views) < self.max_ids:
                marks = self.views[view] = [None, None]
            if marks is None:
                over = True
            else:
                slot = 0 if kind == "complete" else 1
                mark = marks[slot]
                if mark is None or ev.ts_s < mark:
                    marks[slot] = ev.ts_s
        for service in ev.services:
            views = self.view_services.setdefault(service, set())
            if view not in views:
                if self._pairs < self.max_pairs:
                    views.add(view)
                    self._pairs += 1
                else:
                    over = True
            if not views:
                del self.view_services[service]
        self.ids_over_cap += over

    @property
    def abandons(self) -> int:
        return sum(1 for c, a in self.views.values() if a is not None and (c is None or a < c))

    @property
    def completes(self) -> int:
        return sum(1 for c, a in self.views.values() if c is not None and (a is None or c <= a))

    def services(self) -> dict[str, int]:
        return {service: len(self.view_services[service]) for service in sorted(self.view_services)}

    def _vital_states(self) -> dict[str, Any]:
        return {name: self._vitals[name].to_state() for name in sorted(self._vitals)}

    def to_state(self) -> dict[str, Any]:
        """JSON-able value for the durable table; `from_state(s).to_state() == s`."""
        return {
            "state_version": STATE_VERSION,
            "window_start": self.window_start_s,
            "compression": self.compression,
            "sessions": pack(self.sessions),
            "page_views": self.page_views,
            "frustrated_sessions": pack(self.frustrated_sessions),
            "frustration_events": dict(sorted(self.frustration_events.items())),
            "views": pack_marks(self.views),
            "view_services": {s: pack(self.view_services[s]) for s in sorted(self.view_services)},
            "ids_over_cap": self.ids_over_cap,
            "tti_ms_digest": self._tti.to_state(),
            "web_vitals": self._vital_states(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "CxAccumulator":
        try:
            if state["state_version"] not in _READABLE_STATE_VERSIONS:
                raise ValueError(f"unknown CX state version {state['state_version']!r}")
            acc = cls(state["window_start"], state["compression"])
            if state["state_version"] >= 3:
                acc._ids_from_state(state)
            else:
                acc._ids_from_strings(state)
            acc._pairs = sum(len(views) for views in acc.view_services.values())
            acc.page_views = state["page_views"]
            acc.frustration_events = Counter(state["frustration_events"])
            acc._tti = StoredDigest.restore(state["tti_ms_digest"])
            acc._vitals = {name: StoredDigest.restore(stored)
                           for name, stored in state["web_vitals"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed CX accumulator state: {exc!r}") from exc
        return acc

    def _ids_from_state(self, state: Mapping[str, Any]) -> None:
        self.sessions = unpack(state["sessions"])
        self.frustrated_sessions = unpack(state["frustrated_sessions"])
        self.views = unpack_marks(state["views"])
        self.view_services = {s: unpack(p) for s, p in state["view_services"].items()}
        self.ids_over_cap = state["ids_over_cap"]

    def _ids_from_strings(self, state: Mapping[str, Any]) -> None:
        """State v1/v2 (written before ids were hashed): hash the id strings on load."""
        self.sessions = {id_hash(s) for s in state["sessions"]}
        self.frustrated_sessions = {id_hash(s) for s in state["frustrated_sessions"]}
        self.views = {id_hash(v): [c, a] for v, c, a in state["views"]}
        for view, service in state["view_services"]:
            self.view_services.setdefault(service, set()).add(id_hash(view))

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
            "ids_over_cap": self.ids_over_cap,
        }


def _check(ev: RumEvent, window_start_s: int) -> None:
    if ev.ts_s < window_start_s:
        raise ValueError(f"event at {ev.ts_s} before window start {window_start_s}")
    if ev.type == "interactive" and not is_finite_number(ev.tti_ms):
        raise ValueError(f"interactive event without a finite tti_ms: {ev.tti_ms!r}")
    if ev.type == "web_vital" and (not isinstance(ev.name, str) or not is_finite_number(ev.value)):
        raise ValueError(f"web_vital event needs a name and a finite value: {ev!r}")
