"""The correlator: merged windows and lens completeness in, alerts out (`Correlator`).

It buffers merged windows, judges each lens's windows in order (dips, baselines, episodes)
as far as that lens is complete, and decides window w once both lenses are complete up to
w_end + lag windows: each dip's verdict comes from app/core/detect/verdicts.py, the alerts
from the incident book. Its state is plain JSON (`to_state`, or cut per subject).
"""
from app.core.detect import corr_state
from app.core.detect.baseline import LensDetector
from app.core.detect.context import Context
from app.core.detect.dips import CX, LENSES, SRE, DetectionConfig, window_record
from app.core.detect.incidents import IncidentBook
from app.core.detect.verdicts import cx_verdict, sre_verdict

STATE_VERSION = 1


class Correlator:
    """The joiner's pure state machine: merged windows and lens completeness in, alerts out.

    - `on_window(merged)` buffers one merged window (returns no alerts: nothing is decided
      before the lens says it is complete).
    - `on_lens_complete(lens, until_s)`: every merged window of `lens` ending at or before
      `until_s` has been delivered. Each lens's windows are then judged in order (dips,
      baselines, episodes) independently of the other lens; window w is decided once both
      lenses are complete up to w_end + lag * window_s. So skewed lenses (one topic replayed
      before the other) give the same alerts as aligned ones, up to `max_pending_windows`
      of skew, beyond which the lagging lens is treated as complete (its later windows
      then count as late).
    - `to_state()` / `from_state()`: plain JSON; dumping with sorted keys is byte-stable
      across a round trip, so a restarted joiner continues incidents under the same ids.
    - The same state cut per subject (app/core/detect/corr_state.py), for a table that must not
      hold it as one value: `take_changed()` names the (lens, subject) pairs whose part
      changed since the last call, `subject_state(lens, subject)` is that part (None: the
      subject holds nothing and is evicted), `global_state()` the rest, and
      `from_parts(global, parts)` joins them back.
    """

    STATE_VERSION = STATE_VERSION

    def __init__(self, cfg: DetectionConfig | None = None, state: dict | None = None) -> None:
        self.cfg = cfg = cfg or DetectionConfig()
        state = state or {}
        if state and state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown correlator state version {state.get('version')!r}")
        if state and state.get("window_s") != cfg.window_s:
            raise ValueError(f"state was built with {state.get('window_s')} s windows, "
                             f"not {cfg.window_s} s")
        self._complete = {lens: state.get("complete", {}).get(lens) for lens in LENSES}
        self._next_detect = {lens: state.get("next_detect", {}).get(lens) for lens in LENSES}
        self._next_decide: int | None = state.get("next_decide")
        self.late_windows: int = state.get("late_windows", 0)
        self._records = {lens: _int_keys(state.get("records", {}).get(lens, {}))
                         for lens in LENSES}
        self._detections = {lens: _int_keys(state.get("detections", {}).get(lens, {}))
                            for lens in LENSES}
        self._detectors = {lens: LensDetector(lens, cfg, state.get("detectors", {}).get(lens))
                           for lens in LENSES}
        self._incidents = IncidentBook(cfg, state.get("incidents"))
        self._changed: set[tuple[str, str]] = set()  # (lens, subject) since take_changed()
        # Not state: the firing incidents as each window was decided, since take_active_history().
        self._history: list[tuple[float, list]] = [(float("-inf"), self.active_alerts())]

    @classmethod
    def from_state(cls, state: dict, cfg: DetectionConfig | None = None) -> "Correlator":
        return cls(cfg, state)

    @classmethod
    def from_parts(cls, global_part: dict | None, parts: dict[tuple[str, str], dict],
                   cfg: DetectionConfig | None = None) -> "Correlator":
        return cls(cfg, corr_state.assemble(global_part, parts) if global_part or parts else None)

    def global_state(self) -> dict:
        return corr_state.global_state(self)

    def subject_state(self, lens: str, subject: str) -> dict | None:
        return corr_state.subject_state(self, lens, subject)

    def take_changed(self) -> set[tuple[str, str]]:
        changed, self._changed = self._changed, set()
        return changed

    def subjects(self) -> set[tuple[str, str]]:
        """Every (lens, subject) holding state."""
        return corr_state.subjects(self)

    def to_state(self) -> dict:
        return {"version": STATE_VERSION, "window_s": self.cfg.window_s,
                "complete": dict(self._complete),
                "next_detect": dict(self._next_detect), "next_decide": self._next_decide,
                "late_windows": self.late_windows,
                "records": {lens: _str_keys(self._records[lens]) for lens in LENSES},
                "detections": {lens: _str_keys(self._detections[lens]) for lens in LENSES},
                "detectors": {lens: self._detectors[lens].to_state() for lens in LENSES},
                "incidents": self._incidents.to_state()}

    # ---- input -------------------------------------------------------------------------
    def on_window(self, merged: dict) -> list[dict]:
        """Buffer one merged window. Raises ValueError for a malformed one; counts (in
        `late_windows`) and drops one its lens already declared complete."""
        record = window_record(merged)
        lens, subject, start = merged["lens"], merged.get("subject"), merged.get("window_start")
        if not isinstance(subject, str) or not subject:
            raise ValueError("merged window without a subject")
        if not isinstance(start, int) or start % self.cfg.window_s \
                or merged.get("window_end") != start + self.cfg.window_s:
            raise ValueError(f"window {start}..{merged.get('window_end')} is not an "
                             f"epoch-aligned {self.cfg.window_s} s window")
        done = self._effective_complete(lens)
        if done is not None and start + self.cfg.window_s <= done:
            self.late_windows += 1
            return []
        self._records[lens].setdefault(start, {})[subject] = record
        self._changed.add((lens, subject))
        return []

    def on_lens_complete(self, lens: str, complete_until_s: float) -> list[dict]:
        """Record a lens's completeness and return the alerts of every window now decidable."""
        if lens not in LENSES:
            raise ValueError(f"unknown lens {lens!r}")
        previous = self._complete[lens]
        self._complete[lens] = complete_until_s if previous is None \
            else max(previous, complete_until_s)
        for each in LENSES:
            self._detect_until(each, self._effective_complete(each))
        return self._decide_ready()

    # ---- output besides alerts ---------------------------------------------------------
    def correlations(self) -> list[tuple[str, str, str, str, float]]:
        """(service, cohort, sre_metric, cx_metric, r) for every linked pair, as of the last
        decided window: the data of the `lensbridge_lens_correlation` gauge."""
        if self._next_decide is None:
            return []
        ctx = self._context(self._next_decide - self.cfg.window_s)
        first = ctx.w - (self.cfg.baseline_windows - 1) * ctx.step
        pairs = sorted({(service, cohort)
                        for ws, cohorts in self._records[CX].items() if first <= ws <= ctx.w
                        for cohort, rec in cohorts.items() for service in rec["services"]})
        return [(c["service"], c["cohort"], c["sre_metric"], c["cx_metric"], c["r"])
                for c in ctx.correlations(pairs)]

    @property
    def decided_until(self) -> int | None:
        """Windows starting before this have been decided (None: none yet)."""
        return self._next_decide

    def active_alerts(self) -> list[tuple[str, str, str, str]]:
        """(alert_id, kind, lens, subject) of every firing incident."""
        return self._incidents.active()

    def take_active_history(self) -> list[tuple[float, list]]:
        """(window start, `active_alerts()` once that window was decided) for every window
        decided since the last call, after (-inf, what was firing before them). One call may
        decide many windows (a lens catching up): this says what was firing at each. The
        caller takes it after every completeness update, so it stays as short as one update."""
        history, self._history = self._history, [(float("-inf"), self.active_alerts())]
        return history

    # ---- scheduling --------------------------------------------------------------------
    def _effective_complete(self, lens: str) -> float | None:
        known = [t for t in self._complete.values() if t is not None]
        if not known:
            return None
        floor = max(known) - self.cfg.max_pending_windows * self.cfg.window_s
        own = self._complete[lens]
        return floor if own is None else max(own, floor)

    def _detect_until(self, lens: str, until_s: float | None) -> None:
        records, step = self._records[lens], self.cfg.window_s
        start = self._next_detect[lens]
        if start is None:
            if until_s is None or not records or min(records) + step > until_s:
                return  # an earlier window may still arrive
            start = min(records)
        detector = self._detectors[lens]
        while until_s is not None and start + step <= until_s:
            if not detector.episodes and start not in records:
                # Nothing open and no data here: jump over the gap (it changes nothing).
                later = [ws for ws in records if ws > start]
                last = (int(until_s) // step - 1) * step
                start = min(min(later, default=last + step), last + step)
                continue
            entries = detector.detect(start, records.get(start, {}))
            if entries:
                self._detections[lens][start] = entries
            if start in records:  # counts only serve detection: keep the state small
                records[start] = {s: {k: v for k, v in r.items() if k != "counts"}
                                  for s, r in records[start].items()}
            self._changed.update((lens, s) for s in [*entries, *records.get(start, {})])
            start += step
        self._changed.update((lens, s) for s in detector.take_forgotten())
        self._next_detect[lens] = start

    def _decide_ready(self) -> list[dict]:
        horizons = [h for h in (self._effective_complete(lens) for lens in LENSES) if h is not None]
        if len(horizons) < len(LENSES):
            return []
        step, lag_s = self.cfg.window_s, self.cfg.correlation_lag_windows * self.cfg.window_s
        last = (int(min(horizons) - lag_s) // step - 1) * step  # last decidable window start
        w = self._next_decide
        if w is None:
            firsts = [min(d) for d in self._detections.values() if d]
            if not firsts or min(firsts) > last:
                return []  # nothing decidable yet: an earlier window may still arrive
            w = min(firsts)
        alerts: list[dict] = []
        while w <= last:
            # Jump to the next window where something happened: others decide nothing.
            busy = [ws for d in self._detections.values() for ws in d if w <= ws <= last]
            if not busy:
                w = max(w, last + step)
                break
            w = min(busy)
            alerts += self._decide(w)
            self._history.append((w, self.active_alerts()))
            w += step
        self._next_decide = w
        self._prune(w)
        return alerts

    def _decide(self, w: int) -> list[dict]:
        ctx, alerts = self._context(w), []
        for lens, verdict in ((SRE, sre_verdict), (CX, cx_verdict)):
            for subject, entry in sorted(self._detections[lens].get(w, {}).items()):
                self._changed.add((lens, subject))
                if entry["event"] in ("open", "dip"):
                    alerts += self._incidents.on_dip(verdict(ctx, subject), entry["start"], w)
                elif entry["event"] == "close":
                    alerts += self._incidents.on_close(lens, subject, w, entry["checks"])
        return alerts

    def _context(self, w: int) -> Context:
        return Context(self.cfg, w, self._records, self._detections)

    def _prune(self, next_w: int) -> None:
        """Keep what deciding `next_w` onwards reads: detections from next_w - lag, records
        of the baseline (Pearson) and link horizons. Baselines forget by themselves."""
        step = self.cfg.window_s
        keep_detections = next_w - self.cfg.correlation_lag_windows * step
        keep_records = next_w - max(self.cfg.baseline_windows, self.cfg.link_windows) * step
        for lens in LENSES:
            for by_ws, keep in ((self._detections[lens], keep_detections),
                                (self._records[lens], keep_records)):
                for ws in [ws for ws in by_ws if ws < keep]:
                    self._changed.update((lens, s) for s in by_ws.pop(ws))


def _int_keys(by_window: dict) -> dict[int, dict]:
    return {int(ws): dict(v) for ws, v in by_window.items()}


def _str_keys(by_window: dict) -> dict[str, dict]:
    return {str(ws): dict(v) for ws, v in sorted(by_window.items())}
