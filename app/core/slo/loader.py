"""Load SLO definitions from YAML text, reporting every problem as `file:line: reason`.

The file is one or more YAML documents (separated by `---`), one service each, shaped
like a Sloth spec (docs/SLO.md has the format and the Sloth / OpenSLO mapping). We walk
the composed node tree rather than loaded dicts because only nodes remember their line;
every problem found is collected, so one run of the worker lists all of them.
"""
import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from app.core.slo import spec as spec
from app.core.slo.nodes import NodeReader, syntax_error
from app.core.slo.spec import BurnWindow, Slo, SloConfigError

VERSION = "lensbridge/v1"
_DOC = ("version", "service", "period", "labels", "slos")
_SLO = ("name", "description", "objective", "target", "period", "labels", "sli", "alerting")
_SLI = ("type", "threshold_ms")
_ALERTING = ("min_requests", "min_bad_events", "page_alert", "ticket_alert", "windows")
_TOGGLE = ("disable",)
_WINDOW = ("action", "long", "short", "burn_rate", "guard")


def load_slos(text: str, source: str = "slo.yaml", window_s: int = 60) -> list[Slo]:
    """Every SLO in `text`, or SloConfigError listing each problem as `source:line: reason`."""
    reader = NodeReader(source)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SloConfigError([syntax_error(source, exc)]) from None
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


def _document(r: NodeReader, doc: Node, window_s: int) -> list[Slo]:
    fields = r.mapping(doc, "the document", _DOC)
    if not fields:
        return []
    if "version" in fields:
        version = r.scalar(fields["version"], "version", (str,), "a string")
        if version is not None and version != VERSION:
            r.error(fields["version"], f"version must be {VERSION} (got {version!r})")
    service_node = r.required(fields, "service", doc, " (the name the request events carry)")
    service = r.text(service_node, "service") if service_node else None
    period_s = r.duration(fields["period"], "period") if "period" in fields \
        else spec.DEFAULT_PERIOD_S
    labels = r.labels(fields.get("labels"))
    items = fields.get("slos")
    if not isinstance(items, SequenceNode) or not items.value:
        r.error(items or doc, "slos must be a non-empty list")
        return []
    found = [_slo(r, node, service, period_s, labels, window_s) for node in items.value]
    return [slo for slo in found if slo is not None and service is not None]


def _slo(r: NodeReader, node: Node, service: str | None, period_s: int | None,
         doc_labels: dict[str, str], window_s: int) -> Slo | None:
    before = len(r.errors)
    f = r.mapping(node, "an SLO", _SLO)
    name_node = r.required(f, "name", node) if f else None
    name = r.text(name_node, "name") if name_node else None
    if name is not None and not spec.NAME.match(name):
        r.error(f["name"], f"name must be letters, digits, '_', '.' or '-' (got {name!r})")
    objective = _objective(r, node, f)
    if "period" in f:
        period_s = r.duration(f["period"], "period")
    sli, threshold_ms = _sli(r, f.get("sli"), node)
    alerting = _alerting(r, f.get("alerting"), objective, window_s)
    if alerting is not None and not alerting[3]:
        _check_default_windows(r, node, f, alerting[0], objective, window_s)
    if period_s is not None and alerting is not None:
        r.check(f.get("period", node), spec.check_period(period_s, window_s, alerting[0]))
    description = r.scalar(f["description"], "description", (str,), "a string") \
        if "description" in f else ""
    labels = {**doc_labels, **r.labels(f.get("labels"))}
    # A field read as None has recorded its error: the None checks only say so to mypy.
    if (len(r.errors) > before or service is None or period_s is None or name is None
            or objective is None or alerting is None):
        return None
    windows, min_requests, min_bad, _ = alerting
    return Slo(service=service, name=name, objective_percent=objective, sli=sli,
               threshold_ms=threshold_ms, period_s=period_s, windows=windows,
               min_requests=min_requests, min_bad_events=min_bad, description=description or "",
               labels=tuple(sorted(labels.items())),
               where=f"{r.source}:{node.start_mark.line + 1}")


def _check_default_windows(r: NodeReader, node: Node, f: dict[str, Node],
                           windows: tuple[BurnWindow, ...], objective: float | None,
                           window_s: int) -> None:
    """The workbook pairs suit neither every objective nor every window length."""
    hint = "; set alerting.windows"
    for span in sorted({s for w in windows for s in (w.long_s, w.short_s)}):
        problem = spec.check_window(span, window_s)
        r.check(node, problem and f"default burn {problem}{hint}")
    if objective is not None:
        for w in windows:
            problem = spec.check_pair(w, objective)
            where = f["objective" if "objective" in f else "target"]
            r.check(where, problem and problem + hint)


def _objective(r: NodeReader, node: Node, f: dict[str, Node]) -> float | None:
    """`objective` in percent (Sloth, Pyrra) or `target` as a ratio (OpenSLO): exactly one."""
    if ("objective" in f) == ("target" in f):
        r.error(node, "give exactly one of objective (percent, e.g. 99.9) "
                      "or target (ratio, e.g. 0.999)")
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


def _sli(r: NodeReader, node: Node | None, slo_node: Node) -> tuple[str, float | None]:
    if node is None:
        r.error(slo_node, "sli is required: {type: errors} or {type: latency, threshold_ms: 300}")
        return spec.ERRORS, None
    f = r.mapping(node, "sli", _SLI)
    type_node = r.required(f, "type", node, " in sli: errors or latency")
    kind = r.text(type_node, "sli type") if type_node else None
    if kind is not None and kind not in spec.SLIS:
        r.error(f["type"], f"sli type must be errors or latency (got {kind!r})")
    if kind != spec.LATENCY:
        if "threshold_ms" in f and kind == spec.ERRORS:
            r.error(f["threshold_ms"], "threshold_ms applies to type latency only")
        return spec.ERRORS, None
    if "threshold_ms" not in f:
        r.error(node, "threshold_ms is required for type latency "
                      "(requests at or under it are good)")
        return spec.LATENCY, None
    threshold = r.number(f["threshold_ms"], "threshold_ms")
    if threshold is not None and not threshold > 0:
        r.error(f["threshold_ms"], f"threshold_ms must be > 0 (got {threshold:g})")
    return spec.LATENCY, threshold


def _alerting(r: NodeReader, node: Node | None, objective: float | None,
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
    if len(r.errors) > before or min_bad is None:  # None only with its error recorded
        return None
    return windows, min_requests, min_bad, "windows" in f


def _windows(r: NodeReader, node: Node, objective: float | None,
             window_s: int) -> tuple[BurnWindow, ...]:
    if not isinstance(node, SequenceNode) or not node.value:
        r.error(node, "windows must be a non-empty list of {action, long, short, burn_rate}")
        return ()
    out = []
    for item in node.value:
        before = len(r.errors)
        f = r.mapping(item, "a burn window", _WINDOW)
        if isinstance(item, MappingNode):
            for key in ("action", "long", "short", "burn_rate"):
                r.required(f, key, item, " in a burn window")
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
        long_s, short_s = spans.get("long"), spans.get("short")
        # a field read as None has recorded its error: the None checks only say so to mypy
        if (len(r.errors) > before or action is None or long_s is None or short_s is None
                or factor is None):
            continue
        w = BurnWindow(action, long_s, short_s, factor, guard)
        if r.check(item, spec.check_pair(w, objective)):
            out.append(w)
    return tuple(out)
