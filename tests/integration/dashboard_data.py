"""Demo traffic for the dashboard and Prometheus tests: two incidents still open at its end."""
from __future__ import annotations

import json
from pathlib import Path

import orjson

from app.simulate import load_scenario, write_files
from tests.paths import ROOT

START_S = 1_700_000_000
WINDOW_S = 10  # the demo scenario's window
TIMING = {"LENSBRIDGE_WINDOW_SECONDS": str(WINDOW_S), "LENSBRIDGE_GRACE_SECONDS": "2",
          "LENSBRIDGE_AVAILABILITY_SLICE_SECONDS": "5"}


def write_incident_traffic(out_dir: Path) -> dict:
    """Demo traffic that ends while a checkout error incident and a frontend bug are both open.

    ~25k requests and ~12k RUM events over 17 ten-second windows (12 of warm-up), then one line
    that is not JSON and one request for the first window, which arrives after it closed.
    """
    scenario = json.loads((ROOT / "scenarios" / "demo.json").read_text())
    incidents = {i["name"]: i for i in scenario["incidents"]}
    errors = incidents["checkout-errors-peak"]  # expect sre_dip_user_impacting
    frontend = {**incidents["browsers-frontend-bug"], "start_window": errors["start_window"]}  # cx_dip_unexplained
    scenario.update(name="dashboard", duration_windows=errors["start_window"] + errors["duration_windows"],
                    incidents=[errors, frontend])
    scenario.pop("traffic_profile")  # its points lie past the shortened end
    path = out_dir / "scenario.json"
    path.write_text(json.dumps(scenario))
    summary = write_files(load_scenario(path), out_dir, start_s=START_S, seed=1)
    late = {"ts": summary["start_s"] + 1, "service": "checkout", "latency_ms": 12.0, "status": 200}
    with open(out_dir / "requests.ndjson", "ab") as fh:
        fh.write(b"this line is not JSON\n" + orjson.dumps(late) + b"\n")
    return summary
