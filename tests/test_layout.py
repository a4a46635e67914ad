"""The package's shape: rooms of a readable size, no import circles, and layers that only import
downwards (math -> data and models -> training and evaluation -> figures -> app and command line)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gramviz"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 400, 60

# Bottom to top; a module may import its own layer and those below it, never one above.
LAYERS = (
    ("core", ("_checks", "_version", "_workspace", "modalities", "gram", "scores", "losses", "metrics", "distributed")),
    ("data and models", ("media", "features", "datasets", "cache", "embeddings", "world", "models")),
    ("training and evaluation", ("training", "evaluation", "clip_index", "search", "analysis", "experiment",
                                 "study_curves", "exploration")),
    ("figures", ("viz",)),
    ("app and command line", ("app", "cli", "__main__", "")),  # "": the package's own __init__
)


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its code (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(name, path).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # "from package import submodule" imports the submodule; anything else the module itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    for i, (_, members) in enumerate(LAYERS):
        if top in members:
            return i
    raise AssertionError(f"{name} belongs to no layer: add its top-level name to LAYERS in {__file__}")


def test_no_file_or_function_is_too_long():
    long = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_FILE_LINES:
            long.append(f"{path}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path}:{node.lineno} {node.name}(): {length} lines")
    assert not long, "split these by role:\n" + "\n".join(long)


def test_the_import_graph_has_no_circle():
    graph, state, path, circles = _graph(), {}, [], []

    def visit(node: str) -> None:  # depth-first; a grey node met again closes a circle
        state[node] = "grey"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "grey":
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "black"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_layers_only_import_downwards():
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
              for a, targets in _graph().items() for b in sorted(targets) if _layer(b) > _layer(a)]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("core", ["gramviz.gram", "gramviz.scores", "gramviz.losses", "gramviz.metrics"])
def test_the_core_imports_nothing_from_higher_layers(core):
    graph, seen, todo = _graph(), set(), [core]
    while todo:  # everything the core module reaches, directly or not
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    assert all(_layer(m) == 0 for m in seen), sorted(m for m in seen if _layer(m) > 0)


def test_every_module_imports_in_a_fresh_interpreter():
    """Each module on its own, in a new interpreter, in the order a user might import it first."""
    code = (
        "import importlib, json, sys\n"
        "failed = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    before = set(sys.modules)\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        failed[name] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps(failed))\n"
    )
    names = [n for n in _modules() if not n.endswith("__main__")]
    # half the modules first in one interpreter, the other half first in another: no module may
    # depend on having been imported after a particular other one
    for order in (names, names[::-1]):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(order)], capture_output=True, text=True,
                             timeout=300, check=True)
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {}
