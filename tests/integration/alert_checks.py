"""Checks on the alerts a run published, shared by the crash and scale-out tests."""
from __future__ import annotations


def alert_ids(alerts: list[dict]) -> set[str]:
    return {a["alert_id"] for a in alerts}


def assert_consistent(alerts: list[dict]) -> None:
    """No two messages of one id contradict each other: same incident, same subject, same start."""
    by_id: dict[str, set] = {}
    for a in alerts:
        by_id.setdefault(a["alert_id"], set()).add((a["subject"], a["incident_start"]))
    assert all(len(v) == 1 for v in by_id.values()), by_id
