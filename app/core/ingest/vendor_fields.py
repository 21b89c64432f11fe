"""The field readers and writers the vendor mappings share: lenient reads of optional
vendor fields (a field of an odd type reads as absent), the one strict read of a record
container (`record_list`: wrong type rejects the element), copying a field onto a native
object only when it holds something, and the web-vital names OTLP and Faro share."""
from typing import Any

from app.core.ingest.fields import expect
from app.core.ingest.reasons import WRONG_TYPE

VITAL_KEYS = {"lcp": "LCP", "inp": "INP", "cls": "CLS", "fcp": "FCP", "ttfb": "TTFB"}


def as_obj(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list:
    return v if isinstance(v, list) else []


def record_list(container: dict, field: str) -> list[dict]:
    """The record objects of a vendor container field (absent or null: none). A field of the
    wrong type, or an item that is not an object, rejects the whole element as wrong_type:
    reading it as empty would drop the producer's records without a dead letter."""
    items = container.get(field)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise expect(WRONG_TYPE, field, "an array of objects", items)
    return items


def as_str(v: Any) -> str | None:
    """`v` if it is a string, else None: set and dict lookups need a hashable key."""
    return v if isinstance(v, str) else None


def str_list(v: Any) -> list[str] | None:
    """A list of service names from a JSON list or a comma-separated string."""
    if isinstance(v, str):
        v = v.split(",")
    if not isinstance(v, list):
        return None
    names = [s.strip() for s in v if isinstance(s, str) and s.strip()]
    return names or None


def put(out: dict, key: str, value: Any) -> None:
    if value is not None and value != {}:
        out[key] = value


def put_str(out: dict, key: str, value: Any) -> None:
    """Copy an optional string field only when it is one: an odd optional vendor field
    must not get the whole event dead-lettered."""
    if isinstance(value, str) and value:
        out[key] = value
