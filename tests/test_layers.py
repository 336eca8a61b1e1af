"""Imports run one way: every graft module imports only the same or a lower layer, with no cycle.

The test reads the source (``ast``, nothing is imported) of every module under ``src/graft``:
module-level imports, imports inside functions and methods, relative imports (resolved against
the package) and ``importlib.import_module("graft....")`` calls with a literal name.
``from P import n`` counts as an import of the module ``P.n`` when ``P/n.py`` (or ``P/n/``)
exists, otherwise of ``P``. Imports under ``if TYPE_CHECKING:`` are exempt: they never run.

Rules, checked separately so a failure names what broke:

1. **Layers.** Each module belongs to the layer of its longest matching prefix in :data:`LAYERS`
   (a module no prefix matches fails the test: give it a layer). An import may point to the same
   or a lower layer only. ``graft/__init__.py`` is the lazy front door for users (``importlib`` by
   string) and is exempt as an importer; inside the package, importing the root ``graft`` for
   anything but ``__version__`` reaches through the front door to everything, so it counts as an
   import of the top layer.
2. **No cycles.** The graph of graft modules (deferred imports included, so a cycle cannot hide
   inside a function) has no cycle; a same-layer import is therefore allowed exactly when it
   closes no cycle. The failure names each strongly connected component and, for each import
   inside it, the shortest cycle that import closes.
3. **Deferred imports only at a package boundary.** An import inside a function (deferred to
   call time) of a graft module is allowed only when the imported module lies in a different
   top-level package (``graft.<pkg>``) than the importer, e.g. ``graft.cli.measure`` deferring
   ``graft.workflows.measure``, or ``graft.model`` deferring ``graft.data``: that is where deferring
   saves start-up time (``graft --help`` without torch). Inside one package, modules import each
   other at the top, where the dependency is visible. Rules 1 and 2 apply to deferred imports
   too, so deferring never excuses an upward import or a cycle.
4. **Budget.** The number of deferred import statements of graft modules may only go down
   (:data:`DEFERRED_BUDGET`: the issue counted 135; this walk finds 133 at the commit that
   reorganised the tree, 102 once the advisor and the measuring workflows were moved, 63 once
   the regularizers and adaptation methods became the loop's extensions).

:data:`KNOWN_ELSEWHERE` lists violations in modules other helpers are still reworking
(issue 10); the lead empties it at merge time. A listed entry that no longer occurs (for a
cycle: an import that lies on no cycle any more) fails the test too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layers, lowest first, by module prefix.
LAYERS: dict[str, int] = {
    "graft._registry": 0,
    "graft.errors": 0,
    "graft.io": 0,
    "graft.config": 0,
    "graft.metrics": 0,
    "graft.record": 0,
    "graft.progress": 0,
    "graft.tasks": 1,
    "graft.strategies": 1,
    "graft.backbones": 1,
    "graft.data": 2,
    "graft.model": 3,
    "graft.model_source": 3,
    "graft.model_check": 3,
    "graft.model_card": 3,
    "graft.testing": 3,
    "graft.training": 4,
    "graft.measure": 4,
    "graft.protect": 5,
    "graft.adapt": 5,
    "graft.evaluate": 6,
    "graft.workflows": 6,
    "graft.cli": 7,
}
#: The root package as an import target (the front door reaches every layer).
FRONT_DOOR = "graft"
TOP = max(LAYERS.values()) + 1
#: Deferred imports of graft modules may only decrease (135 when issue 10 was filed).
DEFERRED_BUDGET = 66

#: Violations in modules owned by other helpers of issue 10, as (importer, imported) pairs; the
#: lead empties these lists at merge time. "layer": an import up the layers. "cycle": the imports
#: that, removed, leave the graph acyclic (each must lie on a cycle). "deferred": a deferred import
#: inside one package.
KNOWN_ELSEWHERE: dict[str, set[tuple[str, str]]] = {
    "layer": set(),
    "cycle": {
        ("graft.strategies.base", "graft.strategies"),  # create_strategy registers the built-ins
    },
    "deferred": {
        ("graft.data.digits", "graft.data.splits"),
        ("graft.data.unlabeled", "graft.data.tables"),
        ("graft.evaluate.compare", "graft.evaluate.efficiency"),
        ("graft.evaluate.compare", "graft.evaluate.importance"),
        ("graft.evaluate.compare", "graft.evaluate.run_report"),
        ("graft.evaluate.report", "graft.evaluate.curves"),
        ("graft.evaluate.run_report", "graft.evaluate.arms"),
        ("graft.evaluate.run_report", "graft.evaluate.importance"),
        ("graft.strategies.base", "graft.strategies"),
        ("graft.strategies.base", "graft.strategies.render"),
    },
}


@dataclass(frozen=True)
class Import:
    """One import of a graft module."""

    importer: str
    imported: str
    line: int
    deferred: bool

    def __str__(self) -> str:
        where = "deferred" if self.deferred else "module level"
        return f"{self.importer} -> {self.imported} (line {self.line}, {where})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def layer_of(module: str) -> int | None:
    if module == FRONT_DOOR:
        return TOP
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    return None


def package_of(module: str) -> str:
    """The top-level package (or module) of graft that ``module`` belongs to."""
    return ".".join(module.split(".")[:2])


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, deferred: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Every node below ``node`` with whether it runs inside a function; skips TYPE_CHECKING."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _visit(other, deferred)
        else:
            yield from _visit(child, deferred)


def _visit(node: ast.AST, deferred: bool) -> Iterator[tuple[ast.AST, bool]]:
    yield node, deferred
    function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    yield from _walk(node, deferred or function)


def _targets(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The graft modules one statement imports."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            base = ".".join(
                package[: len(package) - node.level + 1] + ([node.module] if node.module else [])
            )
        else:
            base = node.module or ""
        for alias in node.names:
            if base == FRONT_DOOR and alias.name == "__version__":
                continue
            sub = f"{base}.{alias.name}"
            yield sub if is_module(sub) else base
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value


def collect() -> tuple[list[str], list[Import]]:
    modules, imports = [], []
    for path in sorted((SRC / "graft").rglob("*.py")):
        module = module_name(path)
        modules.append(module)
        if module == FRONT_DOOR:
            continue  # the lazy front door
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, deferred in _walk(tree, False):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target == FRONT_DOOR or target.startswith(FRONT_DOOR + "."):
                    imports.append(Import(module, target, getattr(node, "lineno", 0), deferred))
    return modules, imports


MODULES, IMPORTS = collect()


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in IMPORTS:
        if imp.imported != imp.importer:
            edges[imp.importer].add(imp.imported)
    return edges


def components(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan): the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while not component or v not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def cycle_through(a: str, b: str, edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle that uses the import ``a -> b`` (breadth-first from ``b`` back to ``a``)."""
    parents: dict[str, str] = {b: b}
    frontier = [b]
    while frontier and a not in parents:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    if a not in parents:
        return []
    path = [a]
    while path[-1] != b:
        path.append(parents[path[-1]])
    return [a, *reversed(path)]


def _check(rule: str, found: dict[tuple[str, str], str]) -> None:
    known = KNOWN_ELSEWHERE[rule]
    new = sorted(text for pair, text in found.items() if pair not in known)
    stale = sorted(f"{a} -> {b}" for a, b in known - set(found))
    message = []
    if new:
        message.append(f"{len(new)} {rule} violation(s):\n  " + "\n  ".join(new))
    if stale:
        message.append(
            f"KNOWN_ELSEWHERE[{rule!r}] lists imports that no longer violate; remove them:\n  "
            + "\n  ".join(stale)
        )
    assert not message, "\n".join(message)


def test_the_walk_sees_the_package() -> None:
    assert "graft.model" in MODULES and "graft.cli" in MODULES and len(MODULES) > 50
    assert any(i.deferred for i in IMPORTS) and any(not i.deferred for i in IMPORTS)


def test_every_module_has_a_layer() -> None:
    missing = [m for m in MODULES if m != FRONT_DOOR and layer_of(m) is None]
    assert not missing, f"modules without a layer (add their prefix to LAYERS): {missing}"


def test_imports_point_to_the_same_or_a_lower_layer() -> None:
    found = {}
    for imp in IMPORTS:
        src, dst = layer_of(imp.importer), layer_of(imp.imported)
        if src is not None and dst is not None and dst > src:
            found[(imp.importer, imp.imported)] = f"{imp} : layer {src} imports layer {dst}"
    _check("layer", found)


def test_no_import_cycles() -> None:
    """Without the imports listed in KNOWN_ELSEWHERE, the graph of graft modules is acyclic."""
    edges = graph()
    known = KNOWN_ELSEWHERE["cycle"]
    on_cycles = {(a, b) for c in components(edges) for a in sorted(c) for b in edges[a] & c}
    rest = {a: {b for b in targets if (a, b) not in known} for a, targets in edges.items()}
    message = []
    for component in components(rest):
        message.append(f"a cycle among {', '.join(sorted(component))}; its imports:")
        message += [
            f"  {a} -> {b} (cycle {' -> '.join(cycle_through(a, b, rest))})"
            for a in sorted(component)
            for b in sorted(rest[a] & component)
        ]
    stale = sorted(f"{a} -> {b}" for a, b in known - on_cycles)
    if stale:
        message.append("KNOWN_ELSEWHERE['cycle'] lists imports on no cycle; remove them:")
        message += [f"  {pair}" for pair in stale]
    assert not message, "\n".join(message)


def test_deferred_imports_only_cross_into_another_package() -> None:
    found = {}
    for imp in IMPORTS:
        if imp.deferred and package_of(imp.importer) == package_of(imp.imported):
            found[(imp.importer, imp.imported)] = f"{imp}: same package, import it at the top"
    _check("deferred", found)


def test_deferred_imports_stay_within_the_budget() -> None:
    count = len({(i.importer, i.line) for i in IMPORTS if i.deferred})  # statements
    assert count <= DEFERRED_BUDGET, (
        f"{count} deferred imports of graft modules, more than the budget {DEFERRED_BUDGET}: "
        "import at the top of the module unless deferring saves start-up time at a package "
        "boundary"
    )


def test_the_checker_catches_what_it_claims(tmp_path: Path) -> None:
    """The walk on a made-up module: deferred, relative, TYPE_CHECKING and importlib imports."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "from . import base\n"
        "if TYPE_CHECKING:\n"
        "    from graft.cli import main\n"
        "def f():\n"
        "    from graft.workflows import fit\n"
        "    importlib.import_module('graft.evaluate.compare')\n"
    )
    tree = ast.parse(source)
    seen = [
        (t, d)
        for node, d in _walk(tree, False)
        for t in _targets(node, "graft.strategies.auto", False)
        if t.startswith("graft.")
    ]
    assert seen == [
        ("graft.strategies.base", False),
        ("graft.workflows.fit", True),
        ("graft.evaluate.compare", True),
    ]
    edges = {"a": {"b", "d"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": set()}
    assert components(edges) == [{"a", "b", "c"}]
    assert cycle_through("c", "a", edges) == ["c", "a", "b", "c"]
    assert cycle_through("a", "d", edges) == []
    assert layer_of("graft.measure.features") == 4 and layer_of("graft") == TOP
    assert (
        package_of("graft.cli.measure") == "graft.cli"
        and package_of("graft.model") == "graft.model"
    )
