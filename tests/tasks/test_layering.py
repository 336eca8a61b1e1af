"""The tasks layer: no import cycle between its modules, nothing imported from layers above."""

from __future__ import annotations

import ast
from pathlib import Path

import graft.tasks

TASKS_DIR = Path(graft.tasks.__file__).parent
ABOVE = ("graft.model", "graft.training", "graft.workflows", "graft.evaluate", "graft.cli")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_base_imports_no_task_module() -> None:
    siblings = {f"graft.tasks.{p.stem}" for p in TASKS_DIR.glob("*.py")} - {
        "graft.tasks.base",
        "graft.tasks.__init__",
    }
    assert not _imports(TASKS_DIR / "base.py") & siblings


def test_tasks_import_nothing_above() -> None:
    for path in TASKS_DIR.glob("*.py"):
        bad = [m for m in _imports(path) if m.startswith(ABOVE)]
        assert not bad, f"{path.name} imports {bad}"


def test_every_task_module_registers_on_package_import() -> None:
    assert {"classification", "regression", "multilabel", "multitask"} <= set(graft.tasks.TASKS)
