"""What deciding one window reads: `Context`, a read-only view of both lenses' buffered
window records and detections around window w (back to the link and baseline horizons,
forward to w + lag), with the lookups the verdicts share (link shares, session shares,
the best dip within +-lag, Pearson correlations)."""
from app.core.detect import stats
from app.core.detect.dips import CX, SRE, DetectionConfig


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

    def known_entry(self, lens: str, window_start: int, subject: str) -> dict:
        """The detection entry a verdict is built for: it exists (KeyError otherwise)."""
        return self._detections[lens][window_start][subject]

    def known_record(self, lens: str, window_start: int, subject: str) -> dict:
        return self._records[lens][window_start][subject]

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
        views, per_service = 0, dict[str, int]()
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
            entry = self.entry(lens, self.w + offset * self.step, subject) or {}
            for metric, check in sorted(entry.get("checks", {}).items()):
                if not check["dip"]:
                    continue
                alignment = self.cfg.adjacent_alignment ** abs(offset)
                score = check["size"] * alignment * weight
                if best is None or score > best["score"]:
                    best = {"score": score, "metric": metric, "check": check, "offset": offset,
                            "alignment": alignment, "start": entry["start"]}
        return best
