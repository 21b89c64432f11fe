"""Dip detection: is this window of this subject worse than normal, for real?

A metric dips when all of these hold (docs/DETECTION.md explains them for users):

1. the baseline has at least `min_baseline_windows` windows (warm-up);
2. the window carries at least the rule's minimum volume (requests, sessions or page
   views): a handful of events says nothing;
3. the value is worse than the baseline median by at least
   max(min_absolute, min_relative * |median|, mad_k * robust sigma): large in absolute
   terms, relative terms and compared with normal noise;
4. for ratios (error, availability, frustration, abandonment) also significant for the
   volume behind it: the Wilson lower bound of the window's bad share is at least the
   baseline's bad share + min_absolute ("we are ~99 % sure it really got worse by the
   threshold", not just "the point estimate did").

A subject dips in a window when any of its metrics dips.
"""
import math
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.detect import stats
from app.core.detect.stats import Baseline
from app.core.numbers import is_finite_number, is_number

SRE = "sre"
CX = "cx"
LENSES = (SRE, CX)
VOLUME_FIELDS = ("requests", "sessions", "page_views")


@dataclass(frozen=True)
class MetricRule:
    """How one metric dips. Thresholds are in the metric's own units."""

    metric: str
    lens: str
    higher_is_worse: bool
    min_relative: float  # worsening as a fraction of the baseline median (0.5 = +50 %)
    min_absolute: float  # worsening in metric units (ms, or share points for ratios)
    volume: str  # the count that guards it: requests | sessions | page_views
    min_volume: int
    ratio: bool = False  # a binomial share: also needs the Wilson test
    mad_k: float = 3.0  # robust sigmas beyond normal noise


# Quantiles have no Wilson test, so their volume guards carry the significance: sampled
# from a heavy-tailed (lognormal, sigma 0.8) latency, a p95 of 100 requests exceeds the
# true p95 by 50 % in ~0.6 % of windows, of 200 in ~0.03 %; a p99 needs ~1000 requests
# and a p75 ~200 page views for the same. Ratios are guarded by the Wilson test; their
# minimum volume only skips windows too small to say anything. Availability's slices
# are "down" above 5 % errors: below ~50 requests per 10 s slice one error flips one.
DEFAULT_RULES: tuple[MetricRule, ...] = (
    MetricRule("latency_p95_ms", SRE, True, 0.5, 50.0, "requests", 200),
    MetricRule("latency_p99_ms", SRE, True, 0.5, 100.0, "requests", 1000),
    MetricRule("error_ratio", SRE, True, 1.0, 0.02, "requests", 50, ratio=True),
    MetricRule("availability", SRE, False, 0.05, 0.1, "requests", 300, ratio=True),
    MetricRule("frustration_ratio", CX, True, 0.5, 0.05, "sessions", 30, ratio=True),
    MetricRule("abandonment_ratio", CX, True, 0.5, 0.05, "page_views", 50, ratio=True),
    MetricRule("tti_p75_ms", CX, True, 0.3, 300.0, "page_views", 200),
)

DEFAULT_CORRELATION_PAIRS: tuple[tuple[str, str], ...] = (
    ("latency_p95_ms", "tti_p75_ms"),
    ("latency_p95_ms", "abandonment_ratio"),
    ("error_ratio", "frustration_ratio"),
    ("availability", "abandonment_ratio"),
)


@dataclass(frozen=True)
class DetectionConfig:
    """Every knob of the correlation core, with its documented default."""

    window_s: int = 60
    baseline_windows: int = 30
    min_baseline_windows: int = 10
    correlation_lag_windows: int = 1
    resolve_windows: int = 2
    relearn_after_windows: int = 30  # an incident this old is the new normal: learn it
    reemit_every_windows: int = 5  # heartbeat of a still-dipping incident (0 = off)
    traffic_windows: int = 240
    off_peak_ratio: float = 0.35
    link_windows: int = 5
    min_dependency_share: float = 0.05
    adjacent_alignment: float = 0.5
    critical_session_share: float = 0.2
    wilson_z: float = 2.576
    max_pending_windows: int = 1440
    max_evidence_subjects: int = 5
    ignored_subjects: tuple[str, ...] = ("_other",)
    correlation_pairs: tuple[tuple[str, str], ...] = DEFAULT_CORRELATION_PAIRS
    rules: tuple[MetricRule, ...] = field(default=DEFAULT_RULES)

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.baseline_windows < 1 or self.resolve_windows < 1:
            raise ValueError("window_s, baseline_windows and resolve_windows must be > 0")
        if not 1 <= self.min_baseline_windows <= self.baseline_windows:
            raise ValueError("min_baseline_windows must be in [1, baseline_windows]")
        if self.correlation_lag_windows < 0:
            raise ValueError("correlation_lag_windows must be >= 0")
        if len({r.metric for r in self.rules}) != len(self.rules):
            raise ValueError("one rule per metric")
        if any(r.lens not in LENSES or r.volume not in VOLUME_FIELDS for r in self.rules):
            raise ValueError("rule with unknown lens or volume field")

    def rules_for(self, lens: str) -> tuple[MetricRule, ...]:
        return tuple(r for r in self.rules if r.lens == lens)

    def with_rule(self, metric: str, **changes: Any) -> "DetectionConfig":
        """A copy with one metric's rule changed, e.g. `with_rule("error_ratio", min_volume=20)`."""
        if metric not in {r.metric for r in self.rules}:
            raise KeyError(metric)
        rules = tuple(replace(r, **changes) if r.metric == metric else r for r in self.rules)
        return replace(self, rules=rules)


# ---- merged window -> compact record ---------------------------------------------------
def window_record(merged: dict) -> dict:
    """The few numbers of a merged window the core needs, as JSON-ready plain data."""
    lens = merged.get("lens")
    if lens == SRE:
        return _sre_record(merged)
    if lens == CX:
        return _cx_record(merged)
    raise ValueError(f"unknown lens {lens!r}")


def _sre_record(m: dict) -> dict:
    requests = _count(m.get("requests"))
    latency = _dict(m.get("latency_ms"))
    slices = _count(m.get("slices_with_traffic"))
    values = {"latency_p95_ms": _num(latency.get("p95")),
              "latency_p99_ms": _num(latency.get("p99")),
              "error_ratio": _num(m.get("error_ratio")),
              "availability": _num(m.get("availability"))}
    counts = {"error_ratio": [_count(m.get("errors")), requests],
              "availability": [max(0, slices - _count(m.get("slices_up"))), slices]}
    return {"values": _present(values), "counts": counts,
            "volume": {"requests": requests}, "services": {}}


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _cx_record(m: dict) -> dict:
    sessions, page_views = _count(m.get("sessions")), _count(m.get("page_views"))
    tti = _dict(m.get("tti_ms"))
    values = {"frustration_ratio": _num(m.get("frustration_ratio")),
              "abandonment_ratio": _num(m.get("abandonment_ratio")),
              "tti_p75_ms": _num(tti.get("p75"))}
    counts = {"frustration_ratio": [_count(m.get("frustrated_sessions")), sessions],
              "abandonment_ratio": [_count(m.get("abandons")), page_views]}
    links = _dict(m.get("services"))
    services = {str(s): _count(n) for s, n in links.items() if _count(n) > 0}
    return {"values": _present(values), "counts": counts,
            "volume": {"sessions": sessions, "page_views": page_views}, "services": services}


def _num(v: Any) -> float | None:
    return float(v) if is_finite_number(v) else None


def _count(v: Any) -> int:
    return int(v) if is_number(v) and v > 0 else 0


def _present(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


# ---- one metric of one window ------------------------------------------------------------
def check_metric(rule: MetricRule, record: dict, baseline: Baseline | None,
                 cfg: DetectionConfig) -> dict | None:
    """Judge one metric of one window; None when it cannot be judged (no value, warm-up,
    below minimum volume). Returns plain data so it can live in the joiner's state."""
    value = record["values"].get(rule.metric)
    if value is None or baseline is None or baseline.windows < cfg.min_baseline_windows:
        return None
    if record["volume"].get(rule.volume, 0) < rule.min_volume:
        return None
    sign = 1.0 if rule.higher_is_worse else -1.0
    needed = max(rule.min_absolute, rule.min_relative * abs(baseline.median),
                 rule.mad_k * baseline.sigma)
    worse_by = sign * (value - baseline.median)
    dip = worse_by >= needed > 0.0
    if dip and rule.ratio:
        dip = _significant(rule, record, baseline.median, cfg.wilson_z)
    return {"value": value, "baseline": baseline.median,
            "threshold": baseline.median + sign * needed, "dip": dip,
            "size": _size(rule, worse_by, baseline.median)}


def _significant(rule: MetricRule, record: dict, median: float, z: float) -> bool:
    bad, n = record["counts"].get(rule.metric, [0, 0])
    base_bad = median if rule.higher_is_worse else 1.0 - median
    return stats.wilson_lower(bad, n, z) >= base_bad + rule.min_absolute


def _size(rule: MetricRule, worse_by: float, median: float) -> float:
    """Bounded relative worsening of the "bad" quantity. For availability that is the
    unavailable share (0.1 % -> 50 % is huge) rather than availability itself (-50 %)."""
    reference = 1.0 - median if rule.ratio and not rule.higher_is_worse else abs(median)
    if worse_by <= 0.0:
        return 0.0
    return stats.bounded_size(worse_by / reference if reference > 0.0 else math.inf)


def dipped(checks: dict) -> bool:
    return any(c["dip"] for c in checks.values())

