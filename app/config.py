"""Settings -> the pure core's configuration objects, in one place.

The core takes plain frozen configs (window spec, decode limits, detection, SLOs); the
settings object is read once from the environment. Everything that turns one into the
other is here, so no runner or lens description builds a core config by hand.
"""
from __future__ import annotations

from pathlib import Path

from app.core.detect.dips import DetectionConfig
from app.core.ingest.decode import DecodeLimits
from app.core.slo.engine import Slo, load_slos
from app.core.windows.windows import WindowSpec
from app.settings import Settings


def window_spec(settings: Settings) -> WindowSpec:
    return WindowSpec(settings.window_s, settings.grace_s, settings.idle_s, settings.max_open_windows)


def decode_limits(settings: Settings) -> DecodeLimits:
    return DecodeLimits(settings.max_message_bytes, settings.max_future_skew_s,
                        settings.max_subject_chars, settings.max_latency_ms)


def detection_config(settings: Settings) -> DetectionConfig:
    return DetectionConfig(window_s=settings.window_s, baseline_windows=settings.baseline_windows,
                           min_baseline_windows=settings.min_baseline_windows,
                           correlation_lag_windows=settings.correlation_lag_windows,
                           resolve_windows=settings.resolve_windows)


def load_slo_file(path: str, window_s: int) -> list[Slo]:
    """The SLOs of LENSBRIDGE_SLO_FILE ([] when unset); SloConfigError names file, line, reason."""
    if not path:
        return []
    return load_slos(Path(path).read_text(), path, window_s)
