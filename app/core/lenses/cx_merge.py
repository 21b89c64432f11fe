"""CX lens merge (joiner side): the partials of one (cohort, window) into the merged window,
and the rolling view over merged windows. Definitions and exactness: app/core/lenses/cx.py.
"""
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from app.core.ingest.events import FRUSTRATION_TYPES
from app.core.lenses.digest import DEFAULT_COMPRESSION, digest_to_wire, merge_wire, quantile_key
from app.core.lenses.digest import quantiles as digest_quantiles

LENS = "cx"

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


def _merge(partials: Sequence[Mapping[str, Any]], tti_quantiles: Sequence[float], vital_quantile: float,
           compression: int) -> dict[str, Any]:
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


def _roll(merged_windows: Sequence[Mapping[str, Any]], tti_quantiles: Sequence[float], vital_quantile: float,
          compression: int) -> dict[str, Any]:
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
        # Events whose session or view a slot could no longer track (app/core/lenses/idset.py cap):
        # non-zero means `sessions` and the view counts are lower bounds.
        "ids_over_cap": sum(p.get("ids_over_cap", 0) for p in parts),
        "tti_ms_digest": digest_to_wire(tti),
        "web_vitals_digests": {n: digest_to_wire(d) for n, d in vitals.items()},
    }
