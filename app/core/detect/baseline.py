"""Rolling robust baselines of one lens: what "normal" is, per subject and metric.

Per (subject, metric): the values of the last `baseline_windows` closed windows that were
fed to it. The caller decides what is fed: windows inside an open incident of the
subject and windows below a metric's minimum volume are left out, so an incident does
not teach the baseline that the incident is normal.

Centre = median, spread = MAD (median absolute deviation). Both ignore a minority of
outliers (up to half the windows), where a mean and standard deviation would be dragged
by the very spikes we want to detect.

Per subject also the traffic (requests or sessions) of the last `traffic_windows`
windows, incident or not: "traffic now vs usual" explains an SRE dip nobody noticed.
"Usual" is the 90th percentile over a long horizon (default 4 hours), because a
30-window median would itself be off-peak by 3 a.m. and call 3 a.m. normal.

`LensDetector` is the learning loop of one lens: each closed window is judged against the
baselines first (dips.py), then the subject's dip episode steps (incidents.py), and only
then does the baseline learn the window, unless the subject is inside an episode.

State is plain JSON.
"""
from dataclasses import dataclass

from app.core.detect import stats
from app.core.detect.dips import CX, SRE, DetectionConfig, check_metric, dipped
from app.core.detect.incidents import step_episode
from app.core.detect.stats import Baseline

TRAFFIC_PEAK_QUANTILE = 0.9
TRAFFIC_FIELD = {SRE: "requests", CX: "sessions"}


@dataclass(frozen=True)
class Traffic:
    """A subject's traffic baseline: recent median and long-horizon busy level."""

    median: float  # over the last `baseline_windows` windows with traffic
    peak: float  # 90th percentile over the last `traffic_windows` windows with traffic
    windows: int


class Baselines:
    """Rolling baselines of one lens (subjects of different lenses never share one).

    A series is `{"last": window_start, "values": [...]}`, oldest value first: the last
    window start makes adding idempotent without storing a start per value.
    """

    def __init__(self, baseline_windows: int, traffic_windows: int) -> None:
        if baseline_windows < 1 or traffic_windows < 1:
            raise ValueError("baseline and traffic windows must be >= 1")
        self.baseline_windows = baseline_windows
        self.traffic_windows = traffic_windows
        self._values: dict[str, dict[str, dict]] = {}
        self._traffic: dict[str, dict] = {}

    # ---- reading -------------------------------------------------------------------
    def baseline(self, subject: str, metric: str) -> Baseline | None:
        """The baseline, or None when the series is empty."""
        series = self._values.get(subject, {}).get(metric)
        if not series:
            return None
        values = series["values"]
        centre = stats.median(values)
        return Baseline(centre, stats.mad(values, centre), len(values))

    def traffic(self, subject: str) -> Traffic | None:
        series = self._traffic.get(subject)
        if not series:
            return None
        volumes = series["values"]
        recent = volumes[-self.baseline_windows:]
        return Traffic(stats.median(recent),
                       stats.quantile(volumes, TRAFFIC_PEAK_QUANTILE), len(volumes))

    def subjects(self) -> list[str]:
        return sorted(set(self._values) | set(self._traffic))

    def series_of(self, subject: str) -> tuple[dict[str, dict] | None, dict | None]:
        """The subject's metric series and traffic series as stored (not copies), None if absent."""
        return self._values.get(subject), self._traffic.get(subject)

    # ---- learning ------------------------------------------------------------------
    def add_value(self, subject: str, metric: str, window_start: int, value: float) -> None:
        """Append one window's value; a window already folded is ignored (idempotent)."""
        metrics = self._values.setdefault(subject, {})
        metrics[metric] = _append(metrics.get(metric), window_start, value,
                                  self.baseline_windows)

    def add_traffic(self, subject: str, window_start: int, volume: int) -> None:
        self._traffic[subject] = _append(self._traffic.get(subject), window_start, volume,
                                         self.traffic_windows)

    def forget_before(self, window_start: int) -> list[str]:
        """Drop subjects last seen before `window_start`, so departed subjects (a renamed
        service, a retired cohort) do not keep state forever. They re-warm if they return.
        Returns the subjects dropped."""
        dropped = []
        for subject in self.subjects():
            series = [*self._values.get(subject, {}).values(), self._traffic.get(subject)]
            newest = max((s["last"] for s in series if s), default=None)
            if newest is None or newest < window_start:
                self._values.pop(subject, None)
                self._traffic.pop(subject, None)
                dropped.append(subject)
        return dropped

    # ---- state ---------------------------------------------------------------------
    def to_state(self) -> dict:
        return {"values": {s: {m: _copy(series) for m, series in metrics.items()}
                           for s, metrics in self._values.items()},
                "traffic": {s: _copy(series) for s, series in self._traffic.items()}}

    @classmethod
    def from_state(cls, state: dict, baseline_windows: int,
                   traffic_windows: int) -> "Baselines":
        out = cls(baseline_windows, traffic_windows)
        for subject, metrics in state.get("values", {}).items():
            out._values[subject] = {m: _copy(series, baseline_windows)
                                    for m, series in metrics.items()}
        for subject, series in state.get("traffic", {}).items():
            out._traffic[subject] = _copy(series, traffic_windows)
        return out


def _append(series: dict | None, window_start: int, value: float, keep: int) -> dict:
    if series is None:
        return {"last": window_start, "values": [value]}
    if series["last"] >= window_start:
        return series
    values = series["values"]
    values.append(value)
    if len(values) > keep:
        del values[: len(values) - keep]
    series["last"] = window_start
    return series


def _copy(series: dict, keep: int | None = None) -> dict:
    values = series["values"] if keep is None else series["values"][-keep:]
    return {"last": series["last"], "values": list(values)}


class LensDetector:
    """Judges one lens's windows in event-time order and keeps what they teach.

    Depends on nothing but this lens's own windows, so how far the other lens is ahead
    or behind cannot change its results.
    """

    def __init__(self, lens: str, cfg: DetectionConfig, state: dict | None = None) -> None:
        self.lens = lens
        self.cfg = cfg
        self.rules = cfg.rules_for(lens)
        state = state or {}
        self.baselines = Baselines.from_state(state.get("baselines", {}),
                                              cfg.baseline_windows, cfg.traffic_windows)
        self.episodes: dict[str, dict] = {s: dict(e)
                                          for s, e in state.get("episodes", {}).items()}
        self._forgotten: list[str] = []  # subjects whose baselines were dropped

    def take_forgotten(self) -> list[str]:
        forgotten, self._forgotten = self._forgotten, []
        return forgotten

    def detect(self, window_start: int, records: dict[str, dict]) -> dict[str, dict]:
        """One closed window: subject -> {checks, event, start, traffic}. Subjects with no
        window but an open episode are stepped too: a gap counts as not dipping."""
        self._forgotten += self.baselines.forget_before(
            window_start - self.cfg.traffic_windows * self.cfg.window_s)
        entries = {}
        for subject in sorted(set(records) | set(self.episodes)):
            if subject in self.cfg.ignored_subjects:
                continue
            entry = self._detect_subject(subject, window_start, records.get(subject))
            if entry is not None:
                entries[subject] = entry
        return entries

    def _detect_subject(self, subject: str, window_start: int,
                        record: dict | None) -> dict | None:
        checks = {}
        if record is not None:
            for rule in self.rules:
                check = check_metric(rule, record, self.baselines.baseline(subject, rule.metric),
                                     self.cfg)
                if check is not None:
                    checks[rule.metric] = check
        before = self.episodes.get(subject)
        episode, event = step_episode(before, dipped(checks), window_start,
                                      self.cfg.resolve_windows)
        _set_or_drop(self.episodes, subject, episode)
        start = (episode or before or {}).get("start")
        if record is None:
            if event is None:
                return None
            return {"checks": {}, "event": event, "start": start, "traffic": None}
        traffic = self._traffic_entry(subject, record)
        self._learn(subject, window_start, record, episode)
        return {"checks": checks, "event": event, "start": start, "traffic": traffic}

    def _traffic_entry(self, subject: str, record: dict) -> dict:
        volume = record["volume"].get(TRAFFIC_FIELD[self.lens], 0)
        usual = self.baselines.traffic(subject)
        return {"volume": volume, "median": usual.median if usual else None,
                "peak": usual.peak if usual else None}

    def _learn(self, subject: str, window_start: int, record: dict,
               episode: dict | None) -> None:
        self.baselines.add_traffic(subject, window_start,
                                   record["volume"].get(TRAFFIC_FIELD[self.lens], 0))
        relearn_s = self.cfg.relearn_after_windows * self.cfg.window_s
        if episode is not None and window_start - episode["start"] < relearn_s:
            return  # inside an incident: do not teach the baseline that this is normal
        for rule in self.rules:
            value = record["values"].get(rule.metric)
            # Low-volume windows are noise (1 error in 4 requests = 25 %): keep them out.
            if value is not None and record["volume"].get(rule.volume, 0) >= rule.min_volume:
                self.baselines.add_value(subject, rule.metric, window_start, value)

    def to_state(self) -> dict:
        return {"baselines": self.baselines.to_state(),
                "episodes": {s: dict(e) for s, e in self.episodes.items()}}


def _set_or_drop(mapping: dict, key: str, value: dict | None) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value
