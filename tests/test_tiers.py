"""The test tiers' own rules (tests/conftest.py): markers applied by fixture name, a test that
needs a program skipped only when the program is missing and not in CI, and a fast tier that
leaves out every marker."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import conftest
import pytest

ROOT = Path(__file__).resolve().parent.parent


class FakeItem:
    """What the hook reads and writes of a collected test: its id, fixtures and markers."""

    def __init__(self, fixtures=(), markers=(), nodeid="tests/test_x.py::test_x"):
        self.nodeid = nodeid
        self.fixturenames = list(fixtures)
        self.marks = {name: getattr(pytest.mark, name).mark for name in markers}

    def add_marker(self, marker) -> None:
        mark = getattr(pytest.mark, marker).mark if isinstance(marker, str) else marker.mark
        self.marks[mark.name] = mark

    def get_closest_marker(self, name: str):
        return self.marks.get(name)


def _collected(*items: FakeItem) -> list[FakeItem]:
    conftest.pytest_collection_modifyitems(config=None, items=list(items))
    return list(items)


def test_tests_are_marked_by_the_fixtures_they_use():
    champion, small, cohort, plain = _collected(
        FakeItem(["tmp_path", "champion"], nodeid="tests/test_a.py::test_1"),
        FakeItem(["small_champion"], nodeid="tests/test_b.py::test_2"),
        FakeItem(["real_world"]),
        FakeItem(["tmp_path"]),
    )
    assert set(champion.marks) == {"champion"}
    assert set(small.marks) == set()  # the small champion is the fast tier's
    assert set(cohort.marks) == {"slow"}
    assert set(plain.marks) == set()


def test_a_module_uses_one_trained_model_or_the_other():
    with pytest.raises(pytest.UsageError, match=r"tests/test_a\.py: a test module uses"):
        _collected(
            FakeItem(["champion"], nodeid="tests/test_a.py::test_1"),
            FakeItem(["small_champion"], nodeid="tests/test_a.py::test_2"),
        )


@pytest.mark.parametrize(
    ("installed", "ci", "skipped"),
    [(False, None, True), (False, "true", False), (True, None, False), (False, "false", True)],
)
def test_a_missing_program_skips_only_outside_ci(monkeypatch, installed, ci, skipped):
    monkeypatch.setitem(conftest.PROGRAMS, "nginx", (lambda: installed, "nginx", "make nginx"))
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    needs, other = _collected(FakeItem(markers=["nginx"]), FakeItem(markers=["slow"]))
    skip = needs.get_closest_marker("skip")
    assert (skip is not None) == skipped
    if skipped:
        assert "`make nginx` installs it" in skip.kwargs["reason"]
    assert other.get_closest_marker("skip") is None


def test_the_fast_tier_leaves_out_every_registered_marker():
    """A marker added to pyproject.toml must be left out of ``make test-fast`` too."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    registered = {line.split(":")[0] for line in options["ini_options"]["markers"]}
    fast = re.search(r"^FAST := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)[1]
    assert registered == {"champion", "server", "cluster", "postgres", "nginx", "browser", "slow"}
    assert re.fullmatch(r"not \w+( and not \w+)*", fast), fast
    assert set(re.findall(r"not (\w+)", fast)) == registered


def test_modules_with_a_long_test_run_first_and_stay_together():
    items = [
        FakeItem(nodeid="tests/test_a.py::test_1"),
        FakeItem(nodeid="tests/test_b.py::test_1"),
        FakeItem(markers=["postgres"], nodeid="tests/test_b.py::test_2"),
        FakeItem(nodeid="tests/test_c.py::test_1"),
        FakeItem(markers=["slow"], nodeid="tests/test_d.py::test_1"),
        FakeItem(nodeid="tests/test_d.py::test_2"),
    ]
    ordered = list(items)
    conftest.pytest_collection_modifyitems(config=None, items=ordered)
    assert [i.nodeid for i in ordered] == [
        "tests/test_b.py::test_1",
        "tests/test_b.py::test_2",
        "tests/test_d.py::test_1",
        "tests/test_d.py::test_2",
        "tests/test_a.py::test_1",
        "tests/test_c.py::test_1",
    ]
