"""The joiner's SLO step: merged SRE windows -> burn alerts, held until the CX check can be made.

A burn alert for window w waits until the correlator has decided w (both lenses complete
past it), so its CX check sees the cohorts' verdicts for the same window. Held alerts are
part of the durable state, with the engine's. The cohorts' recent windows the check reads
are kept by window start, in memory: after a restart they refill within a few windows.
"""
from __future__ import annotations

from typing import Sequence

from app.core.slo.engine import Slo, SloConfig, SloEngine, attach_impact
from app.core.slo.impact import cx_check

CX_FIELDS = ("window_start", "sessions", "page_views", "services")  # what the CX check reads


class BurnStep:
    LENS = "sre"  # SLOs are judged on this lens's merged windows; the other gives the CX check

    def __init__(self, slos: list[Slo], window_s: int, state: dict | None, cx_windows: int = 5):
        cfg = SloConfig(window_s=window_s)
        self.window_s, self.cx_windows = window_s, cx_windows
        self.cx_view: dict[str, dict[int, dict]] = {}  # cohort -> window start -> CX_FIELDS
        state = state or {}
        try:
            self.engine = SloEngine(slos, cfg, state.get("engine"))
            self.held: list[dict] = list(state.get("held", []))
            self.reset_reason: str | None = None
        except ValueError as exc:  # window length or history settings changed: old state means nothing
            self.engine, self.held = SloEngine(slos, cfg), []
            self.reset_reason = str(exc)

    def on_sre_window(self, merged: dict) -> str | None:
        """Feed one merged SRE window; the engine's refusal as a value (None: taken)."""
        try:
            self.held += self.engine.on_window(merged)
        except ValueError as exc:
            return (f"SLO engine rejected window {merged.get('window_start')} of "
                    f"{merged.get('subject')}: {exc}")
        return None

    def on_window(self, merged: dict) -> str | None:
        """Feed one merged window of either lens; a refusal as a value (None: taken)."""
        if merged.get("lens") == self.LENS:
            return self.on_sre_window(merged)
        self.on_cx_window(merged)
        return None

    def on_cx_window(self, merged: dict) -> None:
        view = self.cx_view.setdefault(merged["subject"], {})
        view[merged["window_start"]] = {k: merged[k] for k in CX_FIELDS if k in merged}

    def on_complete(self, until_s: float | None) -> None:
        if until_s is not None:
            self.held += self.engine.on_complete(until_s)

    def release(self, decided_until: int | None, history: Sequence[tuple[float, list]]) -> list[dict]:
        """Held alerts whose window the correlator has decided, with the CX check attached.
        `history` is the correlator's `take_active_history()`: each alert is checked against
        what was firing once its own window was decided, not after later ones (a lens that
        catches up decides many windows at once, and a short CX incident may be over by then)."""
        if decided_until is None:
            return []
        ready = [a for a in self.held if a["window_start"] < decided_until]
        self.held = [a for a in self.held if a["window_start"] >= decided_until]
        out = []
        for alert in ready:
            at = alert["window_start"]
            impact, related = cx_check(alert["subject"], self._cx_up_to(at), active_at(history, at))
            out.append(attach_impact(alert, {**alert["impact"], **impact}, (), related))
        self._forget_cx(min([a["window_start"] for a in self.held] + [decided_until]))
        return out

    def _cx_up_to(self, window_start: int) -> dict[str, list[dict]]:
        """Each cohort's last `cx_windows` windows up to `window_start`."""
        first = window_start - (self.cx_windows - 1) * self.window_s
        return {cohort: [w for start, w in sorted(view.items()) if first <= start <= window_start]
                for cohort, view in self.cx_view.items()}

    def _forget_cx(self, next_check: int) -> None:
        """Drop windows no check from `next_check` on reads."""
        first = next_check - (self.cx_windows - 1) * self.window_s
        for cohort, view in list(self.cx_view.items()):
            for start in [s for s in view if s < first]:
                del view[start]
            if not view:
                del self.cx_view[cohort]

    def to_state(self) -> dict:
        return {"engine": self.engine.to_state(), "held": self.held}


def active_at(history: Sequence[tuple[float, list]], window_start: int) -> list:
    """What was firing once `window_start` was decided: the last entry at or before it."""
    found = history[0][1] if history else []
    for decided, active in history:
        if decided > window_start:
            break
        found = active
    return found
