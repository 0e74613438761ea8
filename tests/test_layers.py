"""The layering rule (issue 14): lower layers never import higher ones, function-local imports included.

core → objectives / aggregators / retain → data / modeling → training, evaluation → experiments, reports → cli.
Imports are read with ``ast`` from the source (``import``, ``from … import``, relative imports, and
``importlib.import_module("baldro…")`` / ``__import__("baldro…")`` with a literal name), wherever they sit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "baldro"
LOW = ("core", "objectives", "aggregators", "retain", "data", "modeling")
FORBIDDEN = {
    **{pkg: ("training", "evaluation", "experiments", "reports", "cli") for pkg in LOW},
    "training": ("evaluation", "experiments", "reports", "cli"),
    "evaluation": ("training", "experiments", "reports", "cli"),
}


def baldro_imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``[(line, imported baldro name)]`` of every import in ``source``, the code of the dotted ``module``
    (``baldro.data.tofu``; a package's ``__init__`` is named by the package, with ``is_package``)."""
    parts = module.split(".")
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + int(is_package)]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
            names = [f"{n}.{a.name}" for n in names for a in node.names] or names
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [(node.lineno, n) for n in names if n == "baldro" or n.startswith("baldro.")]
    return found


def _modules() -> list[tuple[str, bool, Path]]:
    """(dotted name, is a package, path) of every module under src/baldro."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        out.append((".".join(parts[:-1] if is_package else parts), is_package, path))
    return out


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_lower_layer_imports_a_higher_one():
    modules = _modules()
    assert len(modules) > 50  # the tree was found
    broken = []
    for module, is_package, path in modules:
        forbidden = FORBIDDEN.get(_layer(module) or "", ())
        for line, imported in baldro_imports(path.read_text(encoding="utf-8"), module, is_package):
            if _layer(imported) in forbidden:
                broken.append(f"{path.relative_to(SRC.parent)}:{line} imports {imported}")
    assert broken == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from baldro.training.trainer import UnlearnTrainer\n", "baldro.training.trainer.UnlearnTrainer"),
        ("import baldro.evaluation.tofu\n", "baldro.evaluation.tofu"),
        ("from ..training import loading\n", "baldro.training.loading"),
        ("from baldro import reports\n", "baldro.reports"),
        ("import importlib\nimportlib.import_module('baldro.cli.main')\n", "baldro.cli.main"),
    ],
)
def test_the_checker_sees_every_kind_of_import(source: str, expected: str):
    imported = [name for _, name in baldro_imports(source, "baldro.data.tofu")]
    assert imported == [expected]
    assert _layer(expected) in FORBIDDEN["data"]


def test_relative_imports_resolve_from_a_module_and_from_a_package():
    assert baldro_imports("from . import rows\n", "baldro.data.tofu") == [(1, "baldro.data.rows")]
    assert baldro_imports("from .tofu import load\n", "baldro.data", is_package=True) == [(1, "baldro.data.tofu.load")]


def test_the_old_evaluation_import_of_training_is_caught():
    # evaluation/model_io.py before issue 14 item 5 loaded models through baldro.training.loading
    old = "from baldro.training.loading import load_model, load_tokenizer\n"
    assert [_layer(name) for _, name in baldro_imports(old, "baldro.evaluation.model_io")] == ["training"] * 2
    assert "training" in FORBIDDEN["evaluation"]


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _import_graph() -> dict[str, set[str]]:
    """{module: the baldro modules it imports}, type-only (``TYPE_CHECKING``) and function-local imports included."""
    modules = _modules()
    names = {name for name, _, _ in modules}
    graph: dict[str, set[str]] = {}
    for module, is_package, path in modules:
        deps = set()
        for _, imported in baldro_imports(path.read_text(encoding="utf-8"), module, is_package):
            while imported and imported not in names:  # baldro.training.trainer.UnlearnTrainer → the module
                imported = imported.rpartition(".")[0]
            if imported and imported != module:
                deps.add(imported)
        graph[module] = deps
    return graph


@pytest.mark.parametrize(
    "module",
    ["baldro.training.trainer", "baldro.training.dro_scope", "baldro.training.loss_inputs",
     "baldro.training.scope_context", "baldro.evaluation.tofu", "baldro.evaluation.tofu_scorer",
     "baldro.evaluation.tofu_entries", "baldro.evaluation.tofu_variants"],
)
def test_the_loss_path_and_the_tofu_evaluation_import_no_cycle(module: str):
    # issue 26 item 6: the DRO scope strategies and the loss inputs once imported the Trainer back (for its type)
    graph = _import_graph()
    assert module in graph
    assert module not in _reach(graph, module), f"{module} imports itself back"


def test_the_cycle_check_sees_a_type_only_cycle():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from baldro.training.trainer import T\n"
    graph = {"baldro.training.trainer": {"baldro.training.dro_scope"},
             "baldro.training.dro_scope": {n.rpartition(".")[0] for _, n in
                                           baldro_imports(source, "baldro.training.dro_scope")}}
    assert "baldro.training.trainer" in _reach(graph, "baldro.training.trainer")
