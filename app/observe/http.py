"""The HTTP handler behind `app.observe.metrics.serve`: /metrics, /healthz, /readyz.

prometheus-client's own server answers every path with the metrics; an orchestrator's
probe needs a status code that means something, so the paths are told apart here.
"""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core.health import Health

NOT_READY = "not ready: table recovery or a rebalance in progress"


def handler(metrics: Any, health: Callable[[], Health] | None) -> type[BaseHTTPRequestHandler]:
    def observe() -> Health:
        state = health() if health else Health(False, 0.0, "no progress reporting")
        metrics.stalled.set(int(state.stalled))
        metrics.progress_age.set(state.progress_age_s)
        return state

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path in ("/metrics", "/"):
                observe()
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            elif path in ("/healthz", "/readyz"):
                ready = metrics.registry.get_sample_value("lensbridge_ready") == 1.0
                status, body = probe(path, observe(), ready)
                self._send(status, "application/json", orjson.dumps(body))
            else:
                self._send(404, "text/plain", b"not found: try /metrics, /healthz or /readyz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # scrapes every few seconds: no access log
            pass

    return Handler


def probe(path: str, state: Health, ready: bool) -> tuple[int, dict]:
    """Status and body of /healthz (alive: not stalled) or /readyz (ready and not stalled)."""
    if state.stalled:
        status, reason = "stalled", state.reason
    elif path == "/readyz" and not ready:
        status, reason = "not ready", NOT_READY
    else:
        status, reason = "ok", state.reason
    body = {"status": status, "reason": reason, "progress_age_seconds": round(state.progress_age_s, 3),
            "ready": ready}
    return (200 if status == "ok" else 503), body
