"""Imports run one way, and every module fits in one sitting.

The layers are an import-linter contract in ``pyproject.toml`` (``[tool.importlinter]``):
core <- cohorts <- features <- model <- runtime, registry <- reports <- training, scoring, ops
<- serving <- monitoring <- the command line, with the synthetic generator read by the command
line alone. ``uv run lint-imports`` prints the same verdicts with the offending import chains.
To see the graph, ``uv run python tests/test_layers.py`` prints it per package.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
MAX_MODULE_LINES = 500
# declared parameter tables: one entry per sourced parameter, read as a table, not as logic
# Tables of sourced numbers, read row by row, not held in mind at once.
PARAMETER_TABLES = {"data/synthetic/parameters.py", "data/synthetic/targets.py"}
MAX_SERVICE_LINES = 250  # serving/service.py only wires the apps, routers and the worker


def project_packages() -> set[str]:
    """Top-level directories of the repository that are Python packages (found on disk, not
    taken from the contract)."""
    return {
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in {"tests", "benchmarks"}
    }


def test_the_layer_contracts_hold():
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


def test_every_package_is_in_the_layers():
    """A new top-level package cannot sit outside the contract (and so import anything)."""
    assert set(CONFIG["root_packages"]) == project_packages()
    layered = {
        name.strip()
        for contract in CONFIG["contracts"]
        if contract["type"] == "layers"
        for layer in contract["layers"]
        for name in layer.split("|")
    }
    assert layered == project_packages()


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported project package -> the modules that import it (``ast``: imports
    inside functions included)."""
    packages = project_packages()
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for package in sorted(packages):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in packages and top != package:
                        graph[package][top].add(module)
    return graph


def module_sizes() -> list[tuple[int, str]]:
    paths = [p for package in project_packages() for p in (ROOT / package).rglob("*.py")]
    return sorted(
        (
            (len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(ROOT)))
            for p in paths
        ),
        reverse=True,
    )


def test_modules_fit_in_one_sitting():
    big = [(n, p) for n, p in module_sizes() if n > MAX_MODULE_LINES and p not in PARAMETER_TABLES]
    assert not big, big


def test_the_service_module_is_wiring():
    lines = (ROOT / "serving" / "service.py").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_SERVICE_LINES, len(lines)


if __name__ == "__main__":
    for package, targets in sorted(import_graph().items()):
        print(f"{package} -> {', '.join(sorted(targets)) or '(nothing)'}")
    print("largest modules: " + ", ".join(f"{p} {n}" for n, p in module_sizes()[:8]))
    sys.exit(0)
