"""Typed reading of composed YAML nodes, recording each problem as `source:line: reason`.

`loader` walks the node tree (`yaml.compose`) rather than loaded dicts because only
nodes remember their line. A failed read records the problem and returns None, so one
pass collects every problem in the file instead of stopping at the first.
"""
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from app.core.slo import spec as spec

_SLOTH_SLI = {"events", "raw", "plugin"}


class NodeReader:
    """Typed access to nodes; every failed read records `source:line: reason`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[tuple[int, str]] = []  # (line, "source:line: reason")
        self._construct = yaml.SafeLoader("").construct_object

    def error(self, node: Node, reason: str) -> None:
        line = node.start_mark.line + 1
        self.errors.append((line, f"{self.source}:{line}: {reason}"))

    def mapping(self, node: Node, what: str, known: tuple[str, ...]) -> dict[str, Node]:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping of fields")
            return {}
        fields: dict[str, Node] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            if name in fields:
                self.error(key, f"duplicate field '{name}' in {what}")
            elif name not in known:
                self.error(key, _unknown(name, what, known))
            else:
                fields[name] = value
        return fields

    def required(self, fields: dict[str, Node], key: str, parent: Node,
                 hint: str = "") -> Node | None:
        if key not in fields:
            self.error(parent, f"{key} is required{hint}")
        return fields.get(key)

    def scalar(self, node: Node, field: str, types: tuple[type, ...], kind: str) -> Any:
        """The node's value when it is one of `types` (a bool only if bool is listed), else None."""
        value = self._construct(node) if isinstance(node, ScalarNode) else node
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            self.error(node, f"{field} must be {kind} (got {_show(value)})")
            return None
        return value

    def number(self, node: Node, field: str) -> float | None:
        value = self.scalar(node, field, (int, float), "a number")
        return None if value is None else float(value)

    def text(self, node: Node, field: str) -> str | None:
        value = self.scalar(node, field, (str,), "a string")
        if value is not None and not value.strip():
            self.error(node, f"{field} must not be empty")
            return None
        return value

    def duration(self, node: Node, field: str) -> int | None:
        value = self.scalar(node, field, (str,), "a duration like 30d, 6h or 5m")
        try:
            return None if value is None else spec.parse_duration(value)
        except ValueError as exc:
            self.error(node, f"{field} {exc}")
            return None

    def check(self, node: Node, problem: str | None) -> bool:
        if problem:
            self.error(node, problem)
        return problem is None

    def labels(self, node: Node | None) -> dict[str, str]:
        if node is None:
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, "labels must be a mapping of names to strings")
            return {}
        out = {}
        for key, value in node.value:
            name = self.text(key, "label name")
            text = self.scalar(value, "label value", (str,), "a string")
            if name is not None and text is not None:
                out[name] = text
        return out


def _unknown(name: object, what: str, known: tuple[str, ...]) -> str:
    if what == "sli" and name in _SLOTH_SLI:
        return (f"sli.{name} is Sloth's Prometheus query form: lensbridge measures SLIs from "
                "the request stream, write `type: errors` or `type: latency` with threshold_ms")
    return f"unknown field '{name}' in {what} (known: {', '.join(known)})"


def _show(value: object) -> str:
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) \
        else repr(value) if isinstance(value, str) else str(value)


def syntax_error(source: str, exc: yaml.YAMLError) -> str:
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    text = f"{source}:{mark.line + 1 if mark else '?'}: not valid YAML: "
    text += getattr(exc, "problem", None) or str(exc)
    if context is not None and (what := getattr(exc, "context", None)):
        text += f" ({what} at line {context.line + 1})"
    return text
