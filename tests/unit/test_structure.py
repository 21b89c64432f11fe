"""The shape of the code, checked from its source: the core is pure, Faust stays behind its
boundary, no import cycles, and modules and functions stay small enough to read.

Imports are read with `ast` (nothing is imported), including those inside functions;
imports under `if TYPE_CHECKING:` are for annotations only and never run, so they are left
out of the cycle check.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field

from tests.paths import ROOT

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 50
SIZE_REASON = "Long because:"  # a module docstring line starting so says why it is longer
FAUST = ("faust", "mode")  # Faust and the framework it is built on
KAFKA = ("aiokafka", "kafka")
PURE_THIRD_PARTY = {"orjson", "fastdigest", "numpy", "yaml", "google", "opentelemetry"}  # google.protobuf, opentelemetry.proto: decoding only


@dataclass
class Module:
    name: str
    path: str
    tree: ast.Module
    imports: set[str] = field(default_factory=set)  # every module named, at run time
    typing_imports: set[str] = field(default_factory=set)  # under `if TYPE_CHECKING:`


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _names(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    assert isinstance(node, ast.ImportFrom)
    base = _resolve(node, module, is_package)
    # `from pkg import mod` names the submodule when there is one
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def load_modules() -> dict[str, Module]:
    paths = sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("agents/**/*.py")])
    names = {}
    for path in paths:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    known = set(names)
    modules = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text(), str(path))
        module = Module(name, str(path.relative_to(ROOT)), tree)
        typing_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                target = module.typing_imports if id(node) in typing_only else module.imports
                target |= _names(node, name, path.name == "__init__.py", known)
        modules[name] = module
    return modules


MODULES = load_modules()


def _top(name: str) -> str:
    return name.split(".")[0]


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_tree_is_read():
    assert {"app.core.detect.correlate", "agents.lens", "app.faust.app"} <= set(MODULES)


def test_the_core_imports_neither_faust_nor_kafka_nor_the_rest_of_the_app():
    wrong = {}
    for module in MODULES.values():
        if not _inside(module.name, "app.core"):
            continue
        bad = {name for name in module.imports | module.typing_imports
               if not (_inside(name, "app.core") or _top(name) in sys.stdlib_module_names
                       or _top(name) in PURE_THIRD_PARTY)}
        if bad:
            wrong[module.name] = sorted(bad)
    assert wrong == {}


def test_only_the_boundary_imports_faust():
    # The bench's baselines are plain Faust apps, measured against ours: Faust is their subject.
    wrong = {m.name: sorted(n for n in m.imports | m.typing_imports if _top(n) in FAUST)
             for m in MODULES.values() if not _inside(m.name, "app.faust") and not _inside(m.name, "app.bench.baselines")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_agents_see_ports_not_faust_or_kafka():
    outside = ("app.faust", "app.kafka", "app.worker", "app.cli")
    wrong = {m.name: sorted(n for n in m.imports | m.typing_imports
                            if _top(n) in FAUST + KAFKA or any(_inside(n, o) for o in outside))
             for m in MODULES.values() if _inside(m.name, "agents")}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_only_the_boundary_imports_the_agents():
    # app and agents never form a cycle: agents import app's core, configuration and
    # observability; of app, only the Faust boundary wires the agents in.
    wrong = {m.name: sorted(n for n in m.imports if _inside(n, "agents"))
             for m in MODULES.values() if _inside(m.name, "app") and not _inside(m.name, "app.faust")}
    assert {k: v for k, v in wrong.items() if v} == {}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = {name: {n for n in m.imports if n in MODULES and n != name} for name, m in MODULES.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _sized() -> list[Module]:
    return [m for m in MODULES.values() if not _inside(m.name, "app.bench")]


def _has_size_reason(module: Module) -> bool:
    doc = ast.get_docstring(module.tree) or ""
    return any(line.strip().startswith(SIZE_REASON) for line in doc.splitlines())


def test_no_module_is_longer_than_300_lines_without_a_reason():
    long = {m.path: len((ROOT / m.path).read_text().splitlines()) for m in _sized() if not _has_size_reason(m)}
    assert {path: n for path, n in long.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_is_longer_than_50_lines_without_a_reason():
    long = {}
    for module in _sized():
        if _has_size_reason(module):
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{module.path}:{node.lineno} {node.name}"] = lines
    assert long == {}
