"""Decoded input events: the shapes the lenses fold.

Plain NamedTuples (cheap to build on the hot path, immutable, comparable in tests).
"""
from typing import NamedTuple


class RequestEvent(NamedTuple):
    """One backend request (SRE lens)."""

    ts_s: float
    service: str
    latency_ms: float
    status: int


class RumEvent(NamedTuple):
    """One browser RUM event (CX lens), already mapped onto our own types."""

    ts_s: float
    session_id: str
    type: str
    cohort: str
    view_id: str | None = None
    tti_ms: float | None = None
    name: str | None = None  # web vital name (LCP, INP, CLS, FCP, TTFB)
    value: float | None = None  # web vital value (ms, or unitless for CLS)
    services: tuple[str, ...] = ()


RUM_TYPES = (
    "page_view",
    "interactive",
    "rage_click",
    "dead_click",
    "error_click",
    "excessive_scroll",
    "abandon",
    "complete",
    "web_vital",
)
FRUSTRATION_TYPES = ("rage_click", "dead_click", "error_click", "excessive_scroll")
WEB_VITALS = ("LCP", "INP", "CLS", "FCP", "TTFB")
