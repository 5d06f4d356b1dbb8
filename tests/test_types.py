"""The source packages type-check: pyright (basic mode, ``[tool.pyright]`` in ``pyproject.toml``)
reports no error, it checks every package, and every suppression names its rule and says why.

``uv run pyright`` prints the same diagnostics with their places. Basic mode: wrong calls,
attribute accesses, returns and ``None`` handling are errors; unannotated code is inferred.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from test_layers import project_packages

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pyright"]
# A suppression is for a library annotation pyright cannot follow, never blanket: the rule it
# silences in brackets, then the reason as a comment on the same line.
SUPPRESSION = re.compile(r"#\s*(?:type:\s*ignore|pyright:\s*ignore)(?P<rest>.*)$")
JUSTIFIED = re.compile(r"^\[\w+(?:, *\w+)*\]\s+#\s*\S.{8,}")


def test_pyright_checks_every_source_package():
    assert set(CONFIG["include"]) == project_packages()
    assert CONFIG["typeCheckingMode"] in {"basic", "standard", "strict"}


@pytest.mark.slow  # half a minute: the whole tree (make test runs it; make test-fast does not)
def test_the_source_packages_have_no_type_errors():
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pyright", "--outputjson"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(done.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    listed = "\n".join(
        f"{Path(d['file']).relative_to(ROOT)}:{d['range']['start']['line'] + 1}: "
        f"{d['message'].splitlines()[0]} ({d.get('rule', '-')})"
        for d in errors[:30]
    )
    assert report["summary"]["filesAnalyzed"] > 100
    assert not errors, f"{len(errors)} pyright errors:\n{listed}"


def test_every_suppression_names_its_rule_and_reason():
    unjustified = []
    for package in sorted(project_packages()):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                found = SUPPRESSION.search(line)
                if found and not JUSTIFIED.match(found["rest"].strip()):
                    unjustified.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not unjustified, "\n".join(unjustified)


def test_the_suppression_rule_tells_a_justified_comment_from_a_bare_one():
    def justified(line: str) -> bool:
        found = SUPPRESSION.search(line)
        assert found, line
        return bool(JUSTIFIED.match(found["rest"].strip()))

    assert justified("x = f(y)  # pyright: ignore[reportArgumentType]  # the stub lists str only")
    assert not justified("x = f(y)  # pyright: ignore[reportArgumentType]")
    assert not justified("x = f(y)  # type: ignore")
    assert not justified("x = f(y)  # pyright: ignore")
