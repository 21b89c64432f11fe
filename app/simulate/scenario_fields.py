"""Reading one JSON object of a scenario field by field (`JsonObject`): typed, range-checked
reads whose errors carry the file and the field path, and unknown fields rejected."""
from __future__ import annotations

from typing import Any

from app.simulate.scenario import ScenarioError

REQUIRED = object()  # default of a field that must be present


class JsonObject:
    """One JSON object of the scenario, read field by field; errors carry the field path."""

    def __init__(self, source: str, path: str, data: Any, allowed: tuple | None = None):
        if not isinstance(data, dict):
            raise ScenarioError(source, path or "(top level)", "must be a JSON object")
        self.source, self.path, self.data = source, path, data
        if allowed is not None:
            self.allow(*allowed)

    def allow(self, *keys: str) -> "JsonObject":
        for k in self.data:
            if k not in keys and not k.startswith("_"):  # "_comment" etc. are comments
                raise self.error(k, f"unknown field (expected one of: {', '.join(keys)})")
        return self

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(self.source, self.where(key), message)

    def keys(self) -> list[str]:
        return [k for k in self.data if not k.startswith("_")]

    def _get(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is REQUIRED:
            raise self.error(key, "missing (required)")
        return default

    def number(self, key: str, default: Any = REQUIRED, lo: float | None = None,
               hi: float | None = None, lo_open: bool = False) -> float:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(key, f"must be a number, got {v!r}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise self.error(key, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
        if hi is not None and v > hi:
            raise self.error(key, f"must be <= {hi}, got {v}")
        return float(v)

    def integer(self, key: str, default: Any = REQUIRED, lo: int | None = None,
                hi: int | None = None) -> int:
        v = self._get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(key, f"must be an integer, got {v!r}")
        return int(self.number(key, v, lo, hi))

    def string(self, key: str, default: Any = REQUIRED) -> str:
        v = self._get(key, default)
        if not isinstance(v, str):
            raise self.error(key, f"must be a string, got {v!r}")
        return v

    def choice(self, key: str, options: tuple[str, ...], default: Any = REQUIRED) -> str:
        v = self.string(key, default)
        if v not in options:
            raise self.error(key, f"{v!r} is not one of: {', '.join(options)}")
        return v

    def list(self, key: str, default: Any = REQUIRED, min_items: int = 0) -> list:
        v = self._get(key, default)
        if not isinstance(v, list):
            raise self.error(key, f"must be a list, got {v!r}")
        if len(v) < min_items:
            raise self.error(key, f"needs at least {min_items} item(s)")
        return v

    def strings(self, key: str, default: Any = REQUIRED, min_items: int = 0) -> list[str]:
        items = self.list(key, default, min_items)
        for i, v in enumerate(items):
            if not isinstance(v, str) or not v:
                raise self.error(f"{key}[{i}]", f"must be a non-empty string, got {v!r}")
        return items

    def ints(self, key: str, default: Any, lo: int, hi: int) -> list[int]:
        items = self.list(key, default, min_items=1)
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise self.error(f"{key}[{i}]", f"must be an integer {lo}-{hi}, got {v!r}")
        return items

    def child(self, key: str, data: Any, allowed: tuple | None) -> "JsonObject":
        return JsonObject(self.source, self.where(key), data, allowed)

    def obj(self, key: str, allowed: tuple | None, required: bool = False) -> "JsonObject":
        return self.child(key, self._get(key, REQUIRED if required else {}), allowed)

    def objects(self, key: str, default: Any = REQUIRED, min_items: int = 0) -> list["JsonObject"]:
        items = self.list(key, default, min_items)
        return [self.child(f"{key}[{i}]", item, None) for i, item in enumerate(items)]
