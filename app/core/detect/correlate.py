"""The verdict engine: for one decided window, what does a dip in one lens mean in the other?

- CX dip of a cohort -> SRE dips of the services its page views depended on (all services
  when the cohort has no links), in the same or an adjacent window: `cx_dip_explained`
  with ranked candidates, else `cx_dip_unexplained`.
- SRE dip of a service -> CX dips of cohorts that depend on it, same or adjacent window:
  `sre_dip_user_impacting` with the cohorts and their share of sessions, else
  `sre_dip_no_user_impact` with why (no dependents, off-peak, cohorts flat).

Candidate score = size x alignment x dependency share, each in [0, 1]:
size = r / (1 + r) of the relative worsening r of the service's metric vs its baseline
(for availability: of the unavailable share); alignment = 1 for the same window,
`adjacent_alignment` ** distance otherwise; dependency share = share of the cohort's page
views (over the last `link_windows` windows) that depended on the service (1 when the
cohort has no links). Every candidate carries this product written out.

Reads only windows up to `window + lag`, all complete in both lenses when it runs.
"""
from app.core.detect import corr_state, stats
from app.core.detect.baseline import LensDetector
from app.core.detect.dips import CX, LENSES, SRE, DetectionConfig, window_record
from app.core.detect.incidents import IncidentBook, alert_id, evidence_entry, pct, relative_change

STATE_VERSION = 1


class Context:
    """Read-only view of the records and detections around one decided window."""

    def __init__(self, cfg: DetectionConfig, window_start: int, records: dict,
                 detections: dict) -> None:
        self.cfg, self.w, self.step = cfg, window_start, cfg.window_s
        self.lag = cfg.correlation_lag_windows
        self._records, self._detections = records, detections
        self._links: dict[str, dict[str, float]] = {}

    def entry(self, lens: str, window_start: int, subject: str) -> dict | None:
        return self._detections[lens].get(window_start, {}).get(subject)

    def record(self, lens: str, window_start: int, subject: str) -> dict | None:
        return self._records[lens].get(window_start, {}).get(subject)

    def offsets(self) -> list[int]:
        """-lag..lag, nearest first, earlier before later: the tie-break order."""
        return sorted(range(-self.lag, self.lag + 1), key=lambda o: (abs(o), o))

    def subjects_near(self, lens: str) -> list[str]:
        found = set()
        for offset in self.offsets():
            found |= set(self._records[lens].get(self.w + offset * self.step, {}))
        return sorted(found - set(self.cfg.ignored_subjects))

    def link_shares(self, cohort: str) -> dict[str, float]:
        """service -> share of the cohort's page views that depended on it, over the last
        `link_windows` windows up to w + lag (links are sparse per window)."""
        if cohort not in self._links:
            self._links[cohort] = self._link_shares(cohort)
        return self._links[cohort]

    def _link_shares(self, cohort: str) -> dict[str, float]:
        first = self.w - (self.cfg.link_windows - 1) * self.step
        views, per_service = 0, {}
        for ws in range(first, self.w + self.lag * self.step + 1, self.step):
            rec = self.record(CX, ws, cohort)
            if rec is None:
                continue
            views += rec["volume"]["page_views"]
            for service, n in rec["services"].items():
                per_service[service] = per_service.get(service, 0) + n
        return {s: min(1.0, n / views) if views else 1.0 for s, n in sorted(per_service.items())}

    def sessions_share(self, window_start: int, cohort: str) -> tuple[int, float]:
        cohorts = self._records[CX].get(window_start, {})
        total = sum(r["volume"]["sessions"] for r in cohorts.values())
        mine = cohorts[cohort]["volume"]["sessions"] if cohort in cohorts else 0
        return mine, (mine / total if total else 0.0)

    def pearson(self, service: str, cohort: str, sre_metric: str,
                cx_metric: str) -> tuple[float, int] | None:
        xs, ys = [], []
        for k in range(self.cfg.baseline_windows - 1, -1, -1):
            ws = self.w - k * self.step
            s, c = self.record(SRE, ws, service), self.record(CX, ws, cohort)
            if s and c and sre_metric in s["values"] and cx_metric in c["values"]:
                xs.append(s["values"][sre_metric])
                ys.append(c["values"][cx_metric])
        if len(xs) < self.cfg.min_baseline_windows:
            return None
        r = stats.pearson(xs, ys)
        return None if r is None else (round(r, 6), len(xs))

    def correlations(self, pairs: list[tuple[str, str]]) -> list[dict]:
        out = []
        for service, cohort in pairs:
            for sre_metric, cx_metric in self.cfg.correlation_pairs:
                found = self.pearson(service, cohort, sre_metric, cx_metric)
                if found is not None:
                    out.append({"service": service, "cohort": cohort, "sre_metric": sre_metric,
                                "cx_metric": cx_metric, "r": found[0], "windows": found[1]})
        return out

    def best_dip(self, lens: str, subject: str, weight: float) -> dict | None:
        """The subject's strongest dipped metric within +-lag, weighted by alignment."""
        best = None
        for offset in self.offsets():
            entry = self.entry(lens, self.w + offset * self.step, subject)
            for metric, check in sorted((entry or {}).get("checks", {}).items()):
                if not check["dip"]:
                    continue
                alignment = self.cfg.adjacent_alignment ** abs(offset)
                score = check["size"] * alignment * weight
                if best is None or score > best["score"]:
                    best = {"score": score, "metric": metric, "check": check, "offset": offset,
                            "alignment": alignment, "start": entry["start"]}
        return best


def own_evidence(ctx: Context, lens: str, subject: str) -> list[dict]:
    """The subject's dipped metrics in window w, worst first."""
    checks = ctx.entry(lens, ctx.w, subject)["checks"]
    dipped = sorted((m for m in checks if checks[m]["dip"]), key=lambda m: (-checks[m]["size"], m))
    return [evidence_entry(lens, subject, ctx.w, m, checks[m]) for m in dipped]


def flat_evidence(ctx: Context, lens: str, subjects: list[str]) -> list[dict]:
    """The most-moved metric of each subject in window w, to show the other lens was flat."""
    out = []
    for subject in subjects[: ctx.cfg.max_evidence_subjects]:
        checks = (ctx.entry(lens, ctx.w, subject) or {}).get("checks", {})
        if checks:
            metric = min(checks, key=lambda m: (-_closeness(checks[m]), m))
            out.append(evidence_entry(lens, subject, ctx.w, metric, checks[metric]))
    return out


def _closeness(check: dict) -> float:
    """How far towards its dip threshold a metric moved: 0 at baseline, 1 at threshold."""
    span = check["threshold"] - check["baseline"]
    return (check["value"] - check["baseline"]) / span if span else 0.0


def _by_share(pool: dict[str, float | None]) -> list[str]:
    return sorted(pool, key=lambda s: (-(pool[s] if pool[s] is not None else 1.0), s))


# ---- CX dip of a cohort --------------------------------------------------------------------
def cx_verdict(ctx: Context, cohort: str) -> dict:
    shares = ctx.link_shares(cohort)
    pool: dict[str, float | None] = (
        {s: v for s, v in shares.items() if v >= ctx.cfg.min_dependency_share} if shares
        else {s: None for s in ctx.subjects_near(SRE)})
    found = [c for s in sorted(pool) if (c := _candidate(ctx, s, pool[s])) is not None]
    found.sort(key=lambda c: (-c[0]["score"], c[0]["service"]))
    candidates = [c for c, _, _ in found]
    sessions, share = ctx.sessions_share(ctx.w, cohort)
    traffic = ctx.entry(CX, ctx.w, cohort)["traffic"]
    shown = found[: ctx.cfg.max_evidence_subjects]
    evidence = own_evidence(ctx, CX, cohort) + (
        [evidence_entry(SRE, c["service"], c["window_start"], c["metric"], check)
         for c, check, _ in shown] if shown else flat_evidence(ctx, SRE, _by_share(pool)))
    involved = ([c["service"] for c, _, _ in shown]
                or _by_share(pool)[: ctx.cfg.max_evidence_subjects])
    return {
        "kind": "cx_dip_explained" if candidates else "cx_dip_unexplained",
        "lens": CX, "subject": cohort,
        "severity": "critical" if share >= ctx.cfg.critical_session_share else "warning",
        "services": sorted(c["service"] for c in candidates), "cohorts": [cohort],
        "evidence": evidence, "candidates": candidates,
        "impact": {"sessions": sessions, "session_share": round(share, 6),
                   "page_views": ctx.record(CX, ctx.w, cohort)["volume"]["page_views"],
                   "traffic_vs_usual": _ratio(traffic["volume"], traffic["median"]),
                   "dependency_links": bool(shares)},
        "correlations": ctx.correlations([(s, cohort) for s in sorted(involved)]),
        "related_alert_ids": sorted(alert_id(SRE, c["service"], start) for c, _, start in found),
    }


def _candidate(ctx: Context, service: str,
               share: float | None) -> tuple[dict, dict, int] | None:
    """(candidate, the SRE check behind it, start of the service's incident) or None."""
    best = ctx.best_dip(SRE, service, 1.0 if share is None else share)
    if best is None:
        return None
    check, alignment, offset = best["check"], best["alignment"], best["offset"]
    change = relative_change(check)
    where = ("same window" if offset == 0 else
             f"{abs(offset)} window(s) {'earlier' if offset < 0 else 'later'}")
    share_txt = "n/a (no links: all services considered)" if share is None else f"{share:.2f}"
    candidate = {
        "service": service, "score": round(best["score"], 6), "metric": best["metric"],
        "change": change, "window_start": ctx.w + offset * ctx.step, "offset_windows": offset,
        "size": round(check["size"], 6), "alignment": round(alignment, 6),
        "dependency_share": None if share is None else round(share, 6),
        "explanation": (f"size {check['size']:.2f} ({best['metric']} {pct(change)}) x "
                        f"alignment {alignment:.2f} ({where}) x dependency share {share_txt} "
                        f"= {best['score']:.2f}")}
    return candidate, check, best["start"]


# ---- SRE dip of a service ------------------------------------------------------------------
def sre_verdict(ctx: Context, service: str) -> dict:
    dependents = _dependents(ctx, service)
    affected, related = _affected(ctx, dependents)
    traffic = ctx.entry(SRE, ctx.w, service)["traffic"]
    vs_peak = _ratio(traffic["volume"], traffic["peak"])
    session_share = min(1.0, sum(a["session_share"] for a in affected))
    impact = {"cohorts": affected, "sessions_affected": sum(a["sessions"] for a in affected),
              "session_share": round(session_share, 6), "dependent_cohorts": sorted(dependents),
              "requests": traffic["volume"],
              "traffic_vs_usual": _ratio(traffic["volume"], traffic["median"]),
              "traffic_vs_peak": vs_peak,
              "off_peak": vs_peak is not None and vs_peak < ctx.cfg.off_peak_ratio}
    names = [a["cohort"] for a in affected]
    if affected:
        severity = "critical" if session_share >= ctx.cfg.critical_session_share else "warning"
        other = [evidence_entry(CX, a["cohort"], ctx.w + a["offset_windows"] * ctx.step,
                                a["metric"], _check_of(ctx, a)) for a in affected]
    else:
        severity = "info"
        impact["reasons"], impact["why"] = _why_no_impact(ctx, dependents, impact)
        other = flat_evidence(ctx, CX, _by_share(dependents))
    shown = names or _by_share(dependents)
    return {
        "kind": "sre_dip_user_impacting" if affected else "sre_dip_no_user_impact",
        "lens": SRE, "subject": service, "severity": severity,
        "services": [service], "cohorts": names,
        "evidence": own_evidence(ctx, SRE, service) + other[: ctx.cfg.max_evidence_subjects],
        "candidates": [], "impact": impact,
        "correlations": ctx.correlations(
            [(service, c) for c in sorted(shown[: ctx.cfg.max_evidence_subjects])]),
        "related_alert_ids": sorted(related),
    }


def _affected(ctx: Context, dependents: dict) -> tuple[list[dict], list[str]]:
    """Dependent cohorts that dipped near w (each with its sessions in the window it
    dipped), and the ids of their incidents."""
    affected, related = [], []
    for cohort in sorted(dependents):
        best = ctx.best_dip(CX, cohort, 1.0)
        if best is None:
            continue
        sessions, share = ctx.sessions_share(ctx.w + best["offset"] * ctx.step, cohort)
        share_dep = dependents[cohort]
        affected.append({"cohort": cohort, "sessions": sessions,
                         "session_share": round(share, 6),
                         "dependency_share": None if share_dep is None else round(share_dep, 6),
                         "metric": best["metric"], "change": relative_change(best["check"]),
                         "offset_windows": best["offset"]})
        related.append(alert_id(CX, cohort, best["start"]))
    return affected, related


def _dependents(ctx: Context, service: str) -> dict[str, float | None]:
    """cohort -> dependency share on the service; every cohort (share None) when no cohort
    reports links at all, as the lens then cannot tell who depends on what."""
    cohorts = ctx.subjects_near(CX)
    if not any(ctx.link_shares(c) for c in cohorts):
        return {c: None for c in cohorts}
    shares = {c: ctx.link_shares(c).get(service, 0.0) for c in cohorts}
    return {c: v for c, v in shares.items() if v >= ctx.cfg.min_dependency_share}


def _why_no_impact(ctx: Context, dependents: dict, impact: dict) -> tuple[list[str], str]:
    reasons, words = [], []
    vs_peak = impact["traffic_vs_peak"]
    if impact["off_peak"]:
        reasons.append("off_peak")
        words.append(f"traffic at {vs_peak * 100:.0f}% of its usual peak (off-peak)")
    if not dependents:
        reasons.append("no_dependent_cohorts")
        words.append("no cohort's page views depend on it")
    elif any((ctx.entry(CX, ctx.w, c) or {}).get("checks") for c in dependents):
        reasons.append("dependent_cohorts_flat")
        names = _by_share(dependents)
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        words.append(f"dependent cohorts flat ({', '.join(names[:3])}{more})")
    else:
        reasons.append("dependent_cohorts_not_judged")
        words.append("dependent cohorts too small to judge or still warming up")
    if not impact["off_peak"] and vs_peak is not None:
        words.append(f"traffic at {vs_peak * 100:.0f}% of its usual peak")
    return reasons, "; ".join(words)


def _check_of(ctx: Context, affected: dict) -> dict:
    ws = ctx.w + affected["offset_windows"] * ctx.step
    return ctx.entry(CX, ws, affected["cohort"])["checks"][affected["metric"]]


def _ratio(value: float, usual: float | None) -> float | None:
    return round(value / usual, 6) if usual else None


# ---- the entry object ----------------------------------------------------------------------
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
        horizons = [self._effective_complete(lens) for lens in LENSES]
        if None in horizons:
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
