"""Load SLO definitions from YAML text, reporting every problem as `file:line: reason`.

The file is one or more YAML documents (separated by `---`), one service each, shaped
like a Sloth spec (docs/SLO.md has the format and the Sloth / OpenSLO mapping). We walk
the composed node tree rather than loaded dicts because only nodes remember their line;
every problem found is collected, so one run of the worker lists all of them.
"""
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from app.core import slo_spec as spec
from app.core.slo_spec import BurnWindow, Slo, SloConfigError

VERSION = "lensbridge/v1"
_DOC = ("version", "service", "period", "labels", "slos")
_SLO = ("name", "description", "objective", "target", "period", "labels", "sli", "alerting")
_SLI = ("type", "threshold_ms")
_ALERTING = ("min_requests", "min_bad_events", "page_alert", "ticket_alert", "windows")
_TOGGLE = ("disable",)
_WINDOW = ("action", "long", "short", "burn_rate", "guard")
_SLOTH_SLI = {"events", "raw", "plugin"}


class _Reader:
    """Typed access to nodes; every failed read records `source:line: reason`."""

    def __init__(self, source: str) -> None:
        self.source, self.errors = source, []  # (line, "source:line: reason")
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

    def scalar(self, node: Node, field: str, types: tuple[type, ...], kind: str):
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
            name, text = self.text(key, "label name"), self.scalar(value, "label value", (str,), "a string")
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


def load_slos(text: str, source: str = "slo.yaml", window_s: int = 60) -> list[Slo]:
    """Every SLO in `text`, or SloConfigError listing each problem as `source:line: reason`."""
    reader = _Reader(source)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SloConfigError([_syntax_error(source, exc)]) from None
    slos: list[Slo] = []
    for doc in documents:
        if doc is not None:
            slos += _document(reader, doc, window_s)
    seen: set[tuple[str, str]] = set()
    for slo in slos:
        if (slo.service, slo.name) in seen:
            line = int(slo.where.rsplit(":", 1)[1])
            reader.errors.append((line, f"{slo.where}: duplicate SLO '{slo.name}' for service "
                                        f"'{slo.service}'"))
        seen.add((slo.service, slo.name))
    if not slos and not reader.errors:
        reader.errors.append((1, f"{source}:1: defines no SLOs"))
    if reader.errors:
        raise SloConfigError([text for _, text in sorted(reader.errors, key=lambda e: e[0])])
    return slos


def _syntax_error(source: str, exc: yaml.YAMLError) -> str:
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    text = f"{source}:{mark.line + 1 if mark else '?'}: not valid YAML: "
    text += getattr(exc, "problem", None) or str(exc)
    if context is not None and getattr(exc, "context", None):
        text += f" ({exc.context} at line {context.line + 1})"
    return text


def _document(r: _Reader, doc: Node, window_s: int) -> list[Slo]:
    fields = r.mapping(doc, "the document", _DOC)
    if not fields:
        return []
    if "version" in fields:
        version = r.scalar(fields["version"], "version", (str,), "a string")
        if version is not None and version != VERSION:
            r.error(fields["version"], f"version must be {VERSION} (got {version!r})")
    if "service" not in fields:
        r.error(doc, "service is required (the service name as the request events carry it)")
    service = r.text(fields["service"], "service") if "service" in fields else None
    period_s = r.duration(fields["period"], "period") if "period" in fields else spec.DEFAULT_PERIOD_S
    labels = r.labels(fields.get("labels"))
    items = fields.get("slos")
    if not isinstance(items, SequenceNode) or not items.value:
        r.error(items or doc, "slos must be a non-empty list")
        return []
    found = [_slo(r, node, service, period_s, labels, window_s) for node in items.value]
    return [slo for slo in found if slo is not None and service is not None]


def _slo(r: _Reader, node: Node, service: str | None, period_s: int | None,
         doc_labels: dict[str, str], window_s: int) -> Slo | None:
    before = len(r.errors)
    f = r.mapping(node, "an SLO", _SLO)
    name = r.text(f["name"], "name") if "name" in f else r.error(node, "name is required")
    if name is not None and not spec.NAME.match(name):
        r.error(f["name"], f"name must be letters, digits, '_', '.' or '-' (got {name!r})")
    objective = _objective(r, node, f)
    if "period" in f:
        period_s = r.duration(f["period"], "period")
    sli, threshold_ms = _sli(r, f.get("sli"), node)
    alerting = _alerting(r, f.get("alerting"), objective, window_s)
    if objective is not None and alerting is not None and not alerting[3]:
        for w in alerting[0]:  # the workbook pairs do not suit every objective
            problem = spec.check_pair(w, objective)
            r.check(f["objective" if "objective" in f else "target"],
                    problem and f"{problem}; set alerting.windows for this objective")
    if period_s is not None and alerting is not None:
        r.check(f.get("period", node), spec.check_period(period_s, window_s, alerting[0]))
    description = r.scalar(f["description"], "description", (str,), "a string") \
        if "description" in f else ""
    labels = {**doc_labels, **r.labels(f.get("labels"))}
    if len(r.errors) > before or service is None or period_s is None:
        return None
    windows, min_requests, min_bad, _ = alerting
    return Slo(service=service, name=name, objective_percent=objective, sli=sli,
               threshold_ms=threshold_ms, period_s=period_s, windows=windows,
               min_requests=min_requests, min_bad_events=min_bad, description=description or "",
               labels=tuple(sorted(labels.items())),
               where=f"{r.source}:{node.start_mark.line + 1}")


def _objective(r: _Reader, node: Node, f: dict[str, Node]) -> float | None:
    """`objective` in percent (Sloth, Pyrra) or `target` as a ratio (OpenSLO): exactly one."""
    if ("objective" in f) == ("target" in f):
        r.error(node, "give exactly one of objective (percent, e.g. 99.9) or target (ratio, e.g. 0.999)")
        return None
    if "objective" in f:
        percent = r.number(f["objective"], "objective")
        ok = percent is not None and r.check(f["objective"], spec.check_objective(percent))
        return percent if ok else None
    ratio = r.number(f["target"], "target")
    if ratio is not None and not 0 < ratio < 1:
        r.error(f["target"], f"target must be a ratio between 0 and 1 (got {ratio:g})")
        return None
    return None if ratio is None else float(spec.exact(ratio) * 100)


def _sli(r: _Reader, node: Node | None, slo_node: Node) -> tuple[str, float | None]:
    if node is None:
        r.error(slo_node, "sli is required: {type: errors} or {type: latency, threshold_ms: 300}")
        return spec.ERRORS, None
    f = r.mapping(node, "sli", _SLI)
    kind = r.text(f["type"], "sli type") if "type" in f else r.error(node, "sli type is required")
    if kind is not None and kind not in spec.SLIS:
        r.error(f["type"], f"sli type must be errors or latency (got {kind!r})")
    if kind != spec.LATENCY:
        if "threshold_ms" in f and kind == spec.ERRORS:
            r.error(f["threshold_ms"], "threshold_ms applies to type latency only")
        return spec.ERRORS, None
    if "threshold_ms" not in f:
        r.error(node, "threshold_ms is required for type latency (requests at or under it are good)")
        return spec.LATENCY, None
    threshold = r.number(f["threshold_ms"], "threshold_ms")
    if threshold is not None and not threshold > 0:
        r.error(f["threshold_ms"], f"threshold_ms must be > 0 (got {threshold:g})")
    return spec.LATENCY, threshold


def _alerting(r: _Reader, node: Node | None, objective: float | None,
              window_s: int) -> tuple[tuple[BurnWindow, ...], int, float, bool] | None:
    """(pairs, min_requests, min_bad_events, whether the pairs were given) or None."""
    before = len(r.errors)
    f = r.mapping(node, "alerting", _ALERTING) if node is not None else {}
    min_requests = r.scalar(f["min_requests"], "min_requests", (int,), "a whole number") \
        if "min_requests" in f else spec.DEFAULT_MIN_REQUESTS
    min_bad = r.number(f["min_bad_events"], "min_bad_events") \
        if "min_bad_events" in f else spec.DEFAULT_MIN_BAD_EVENTS
    for key, value in (("min_requests", min_requests), ("min_bad_events", min_bad)):
        if value is not None and value < 0:
            r.error(f[key], f"{key} must be >= 0 (got {value:g})")
    windows = _windows(r, f["windows"], objective, window_s) if "windows" in f \
        else spec.WORKBOOK_WINDOWS
    for action in spec.ACTIONS:  # Sloth: page_alert/ticket_alert: {disable: true}
        toggle = f.get(f"{action}_alert")
        off = r.mapping(toggle, f"{action}_alert", _TOGGLE).get("disable") if toggle else None
        if off is not None and r.scalar(off, "disable", (bool,), "true or false"):
            windows = tuple(w for w in windows if w.action != action)
    if len(r.errors) > before:
        return None
    return windows, min_requests, min_bad, "windows" in f


def _windows(r: _Reader, node: Node, objective: float | None,
             window_s: int) -> tuple[BurnWindow, ...]:
    if not isinstance(node, SequenceNode) or not node.value:
        r.error(node, "windows must be a non-empty list of {action, long, short, burn_rate}")
        return ()
    out = []
    for item in node.value:
        before = len(r.errors)
        f = r.mapping(item, "a burn window", _WINDOW)
        for key in ("action", "long", "short", "burn_rate"):
            if key not in f and f:
                r.error(item, f"{key} is required in a burn window")
        action = r.text(f["action"], "action") if "action" in f else None
        if action is not None and action not in spec.ACTIONS:
            r.error(f["action"], f"action must be page or ticket (got {action!r})")
        spans = {k: r.duration(f[k], k) for k in ("long", "short") if k in f}
        for key, seconds in spans.items():
            if seconds is not None:
                r.check(f[key], spec.check_window(seconds, window_s))
        factor = r.number(f["burn_rate"], "burn_rate") if "burn_rate" in f else None
        if factor is not None and not factor > 0:
            r.error(f["burn_rate"], f"burn_rate must be > 0 (got {factor:g})")
        guard = r.scalar(f["guard"], "guard", (bool,), "true or false") if "guard" in f \
            else action == spec.PAGE
        if len(r.errors) > before or not f:
            continue
        w = BurnWindow(action, spans["long"], spans["short"], factor, guard)
        if r.check(item, spec.check_pair(w, objective)):
            out.append(w)
    return tuple(out)
