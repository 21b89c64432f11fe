"""The two lenses, described for the generic machinery: decoder, subject, accumulators,
merge, and the gauges of a merged window.

Built once from the settings by the worker; everything here is plain wiring of
the pure core, so the agents stay free of lens-specific code.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Callable

from app.config import decode_limits
from app.core.ingest.decode import Rejected, decode_requests, decode_rum
from app.core.lenses import cx, sre
from app.core.lenses.cx_merge import DEFAULT_TTI_QUANTILES as TTI_QUANTILES
from app.core.windows.partition import LensSpec
from app.observe.metrics import Metrics
from app.settings import Settings

log = logging.getLogger("lensbridge.joiner")

Decoder = Callable[[bytes | None, float], tuple[list, list[Rejected]]]
WindowObserver = Callable[[dict], None]  # a merged window -> its gauges


@dataclass(frozen=True)
class Lens:
    name: str
    topic: str
    spec: LensSpec
    decode: Decoder
    merge: Callable[[list[dict]], dict]
    gauges: Callable[[Metrics], WindowObserver]  # a fresh observer (and rolling view) per owner


# Merging k partition digests into one of the same size loses tail resolution (p99 off by
# more than 1% at a few thousand values per window, measured); the merged digest keeps more.
MERGE_RESOLUTION = 4


def sre_lens(settings: Settings) -> Lens:
    is_error = sre.parse_error_statuses(settings.error_statuses)
    slice_s, compression = settings.availability_slice_s, settings.digest_compression

    limits = decode_limits(settings)
    return Lens(
        name="sre",
        topic=settings.topic_requests,
        spec=LensSpec("sre", lambda e: e.service, lambda start: sre.SreAccumulator(start, slice_s, compression),
                      sre.SreAccumulator.from_state, lambda acc, events: acc.fold(events, is_error)),
        decode=lambda raw, now_s: decode_requests(raw, now_s, limits),
        merge=lambda partials: sre.merge_sre_partials(
            partials, settings.latency_quantiles, settings.availability_error_ratio,
            compression * MERGE_RESOLUTION),
        gauges=lambda metrics: lambda merged: metrics.observe_sre_window(merged, settings.latency_quantiles),
    )


def cx_lens(settings: Settings) -> Lens:
    compression = settings.digest_compression
    limits, cohort_keys = decode_limits(settings), settings.cohort_keys
    return Lens(
        name="cx",
        topic=settings.topic_rum,
        spec=LensSpec("cx", lambda e: e.cohort, lambda start: cx.CxAccumulator(start, compression),
                      cx.CxAccumulator.from_state, lambda acc, events: acc.fold(events)),
        decode=lambda raw, now_s: decode_rum(raw, now_s, limits, cohort_keys),
        merge=lambda partials: cx.merge_cx_partials(partials, compression=compression * MERGE_RESOLUTION),
        gauges=lambda metrics: CxGauges(metrics, settings.cx_rolling_windows),
    )


class CxGauges:
    """A cohort's merged window and its rolling view over the last `rolling_windows` windows
    (in memory: after a restart it refills within that many windows)."""

    def __init__(self, metrics: Metrics, rolling_windows: int):
        self.metrics, self.rolling_windows = metrics, rolling_windows
        self.rolling: dict[str, deque] = {}

    def __call__(self, merged: dict) -> None:
        self.metrics.observe_cx_window(merged, TTI_QUANTILES)
        recent = self.rolling.setdefault(merged["subject"], deque(maxlen=self.rolling_windows))
        recent.append(merged)
        try:
            self.metrics.observe_cx_rolling(cx.rolling_cx(list(recent), TTI_QUANTILES), TTI_QUANTILES)
        except ValueError as exc:
            log.error("rolling CX view of %s: %s", merged["subject"], exc)


def lenses(settings: Settings) -> dict[str, Lens]:
    return {lens.name: lens for lens in (sre_lens(settings), cx_lens(settings))}
