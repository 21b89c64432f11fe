"""The joiner's SLO step: merged SRE windows -> burn alerts, held until the CX check can be made.

A burn alert for window w waits until the correlator has decided w (both lenses complete
past it), so its CX check sees the cohorts' verdicts for the same window. Held alerts are
part of the durable state, with the engine's.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from app.core.slo import Slo, SloConfig, SloEngine, attach_impact, load_slos
from app.core.slo_impact import cx_check

log = logging.getLogger("lensbridge.slo")


def load_slo_file(path: str, window_s: int) -> list[Slo]:
    """The SLOs of LENSBRIDGE_SLO_FILE ([] when unset); SloConfigError names file, line, reason."""
    if not path:
        return []
    return load_slos(Path(path).read_text(), path, window_s)


class BurnStep:
    def __init__(self, slos: list[Slo], window_s: int, state: dict | None):
        cfg = SloConfig(window_s=window_s)
        state = state or {}
        try:
            self.engine = SloEngine(slos, cfg, state.get("engine"))
            self.held: list[dict] = list(state.get("held", []))
        except ValueError as exc:  # window length or history settings changed
            log.warning("SLO state not reusable (%s); starting fresh", exc)
            self.engine, self.held = SloEngine(slos, cfg), []

    def on_sre_window(self, merged: dict) -> None:
        try:
            self.held += self.engine.on_window(merged)
        except ValueError as exc:
            log.error("SLO engine rejected window %s of %s: %s", merged.get("window_start"),
                      merged.get("subject"), exc)

    def on_complete(self, until_s: float | None) -> None:
        if until_s is not None:
            self.held += self.engine.on_complete(until_s)

    def release(self, decided_until: int | None, recent_cx: dict,
                active: Iterable[tuple[str, str, str, str]]) -> list[dict]:
        """Held alerts whose window the correlator has decided, with the CX check attached."""
        if decided_until is None:
            return []
        active = list(active)
        ready = [a for a in self.held if a["window_start"] < decided_until]
        self.held = [a for a in self.held if a["window_start"] >= decided_until]
        out = []
        for alert in ready:
            impact, related = cx_check(alert["subject"], recent_cx, active)
            out.append(attach_impact(alert, {**alert["impact"], **impact}, (), related))
        return out

    def to_state(self) -> dict:
        return {"engine": self.engine.to_state(), "held": self.held}
