"""Imports run one way: core <- data <- features <- evaluation <- model <- reports <- training,
serving on top of the model and the reports, the command line over everything.

Every ``import`` in the project's own packages (at module level or inside a function) is read
with ``ast``; each package may import only the packages the table below allows. Run as a script
to print the import graph per package and the largest modules::

    uv run python tests/test_layers.py
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package -> the project packages it may import (itself always)
ALLOWED: dict[str, set[str]] = {
    "icans": set(),  # core: the contract, ASTCT grading, settings, errors
    "cohort": {"icans"},  # the cohort format and its one reader
    "data": {"icans", "cohort"},  # the synthetic generator: a source of cohorts
    "features": {"icans", "cohort"},
    "evaluation": {"icans", "features"},
    "model": {"icans", "features", "evaluation"},
    "reports": {"icans", "cohort", "features", "evaluation", "model"},
    "training": {"icans", "cohort", "features", "evaluation", "model", "reports"},
    "serving": {"icans", "features", "model", "reports"},
    # icans monitor: reads the serving layer's prediction log, compares it with the reference
    "monitoring": {"icans", "features", "evaluation", "model", "reports", "serving"},
    "cli": {
        "icans",
        "cohort",
        "data",
        "features",
        "evaluation",
        "model",
        "reports",
        "training",
        "serving",
        "monitoring",
    },
}
MAX_MODULE_LINES = 600  # "about 600 lines", parameter tables aside (data/synthetic/parameters.py)


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported project package -> the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for package in ALLOWED:
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
                    if top in ALLOWED and top != package:
                        graph[package][top].add(module)
    return graph


def module_sizes() -> list[tuple[int, str]]:
    paths = [p for package in ALLOWED for p in (ROOT / package).rglob("*.py")]
    return sorted(
        (
            (len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(ROOT)))
            for p in paths
        ),
        reverse=True,
    )


def test_every_import_runs_the_allowed_way():
    wrong = [
        f"{package} imports {target} (in {', '.join(sorted(modules))})"
        for package, targets in import_graph().items()
        for target, modules in targets.items()
        if target not in ALLOWED[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_nothing_below_the_command_line_reads_the_generator():
    readers = {p for p, targets in import_graph().items() if "data" in targets}
    assert readers <= {"cli"}, readers


def test_the_checker_sees_imports_inside_functions():
    # cli/main.py imports training inside its command functions only
    assert "training" in import_graph()["cli"]


def test_modules_fit_in_one_sitting():
    big = [
        (n, path)
        for n, path in module_sizes()
        if n > MAX_MODULE_LINES and path != "data/synthetic/parameters.py"
    ]
    assert not big, big


if __name__ == "__main__":
    for package, targets in sorted(import_graph().items()):
        print(f"{package} -> {', '.join(sorted(targets)) or '(nothing)'}")
    print("largest modules: " + ", ".join(f"{p} {n}" for n, p in module_sizes()[:8]))
    sys.exit(0)
