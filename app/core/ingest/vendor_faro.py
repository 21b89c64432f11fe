"""Grafana Faro transport payloads -> native RUM events: `faro.frustration.*` events,
navigations (page views) and `web-vitals` measurements; other items map to none."""
from typing import Any

from app.core.ingest.vendor_fields import VITAL_KEYS, as_obj, put, put_str, record_list, str_list


def _faro_base(meta: dict) -> tuple[dict, list[str] | None]:
    """Fields shared by every item of one payload, and the session's services."""
    session, page = as_obj(meta.get("session")), as_obj(meta.get("page"))
    sattrs = {k: v for k, v in as_obj(session.get("attributes")).items() if isinstance(v, str)}
    base: dict[str, Any] = {"source": "faro"}
    put(base, "session_id", session.get("id"))
    put_str(base, "view_id", page.get("id"))
    put_str(base, "page", page.get("url"))
    put_str(base, "user_id", as_obj(meta.get("user")).get("id"))
    put(base, "cohort", sattrs.pop("cohort", None))
    services = str_list(sattrs.pop("services", None))
    mobile = as_obj(meta.get("browser")).get("mobile")
    if isinstance(mobile, bool):
        sattrs.setdefault("device", "mobile" if mobile else "desktop")
    put(base, "attributes", sattrs)
    return base, services


def from_faro(payload: dict) -> list[dict]:
    base, services = _faro_base(payload["meta"])
    out: list[dict] = []
    for item in record_list(payload, "events"):
        name, attrs = item.get("name"), as_obj(item.get("attributes"))
        if not isinstance(name, str):
            continue
        ev = dict(base)
        put(ev, "ts", item.get("timestamp"))
        if name.startswith("faro.frustration."):
            out.append({**ev, "type": name.removeprefix("faro.frustration.")})
        elif name == "faro.performance.navigation":
            # Services go on the page view only: frustration events carry no navigation id,
            # so the same page could otherwise count as two views of a service.
            put(ev, "services", services)
            if "view_id" not in ev:
                put_str(ev, "view_id", attrs.get("faroNavigationId"))
            out.append({**ev, "type": "page_view"})
    for item in record_list(payload, "measurements"):
        if item.get("type") != "web-vitals":
            continue
        ev = {**base, "type": "web_vital"}
        put(ev, "ts", item.get("timestamp"))
        nav_id = as_obj(item.get("context")).get("navigation_entry_id")
        if isinstance(nav_id, str) and nav_id != "unknown":
            ev.setdefault("view_id", nav_id)  # the navigation event's faroNavigationId
        for key, value in as_obj(item.get("values")).items():
            if key in VITAL_KEYS:
                out.append({**ev, "name": VITAL_KEYS[key], "value": value})
    return out
