"""The documentation: the site builds strictly and offline, every module is in the API reference,
the import-graph picture is current, and the README stays short with links that resolve.

The site is built the way ``make docs`` builds it (``mkdocs build --strict``: a broken link, a
missing anchor or page, or a mkdocstrings error fails it), into a temporary directory.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "docs" / "scripts"
README_MAX_LINES = 200


def _script(name: str):
    """A module of ``docs/scripts`` (not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_modules() -> dict[str, set[str]]:
    """package -> every module under it, found on disk (independently of the docs hooks)."""
    out: dict[str, set[str]] = {}
    for init in ROOT.glob("*/__init__.py"):
        package = init.parent.name
        if package in {"tests", "benchmarks"}:
            continue
        names = set()
        for path in init.parent.rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        out[package] = names
    return out


def test_the_import_graph_picture_is_current():
    for path, text in _script("import_graph").render().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(ROOT)} is stale: run 'uv run python docs/scripts/import_graph.py'"
        )


def test_every_module_has_a_block_on_its_package_page():
    hooks = _script("hooks")
    pages = hooks.api_pages()
    modules = source_modules()
    assert set(hooks.packages()) == set(modules)
    for package, names in modules.items():
        text = pages[f"reference/api/{package}.md"]
        listed = {line[4:].strip() for line in text.splitlines() if line.startswith("::: ")}
        assert listed == names, package
        assert f"({package}.md)" in pages["reference/api/index.md"]


def _relative_links(markdown: str) -> list[str]:
    links = re.findall(r"\]\(([^)\s]+)\)", markdown)
    return [link for link in links if not re.match(r"^[a-z]+:|^#", link)]


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_the_top_level_documents_link_to_files_that_exist(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    missing = [link for link in _relative_links(text) if not (ROOT / link.split("#")[0]).exists()]
    assert not missing, f"{name} links to missing files: {missing}"


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, len(lines)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert "WARNING" not in result.stderr, result.stderr[-6000:]
    return out


@pytest.mark.slow
def test_the_site_builds_strictly(site):
    for page in ("index.html", "concepts/data-card/index.html", "reference/cli/index.html"):
        assert (site / page).is_file(), page
    card = (site / "concepts" / "data-card" / "index.html").read_text(encoding="utf-8")
    assert "These are not patients" in card  # embedded from data/synthetic/README.md
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "icans cohort import" in cli and "Usage:" in cli
    config = (site / "reference" / "configuration" / "index.html").read_text(encoding="utf-8")
    settings_table = config.split('id="settings"')[1].split('id="training-options"')[0]
    assert "<table>" in settings_table and "<code>ICANS_" in settings_table
    assert "champion_margin" in config.split('id="training-options"')[1]


@pytest.mark.slow
def test_every_module_is_documented_on_its_package_page(site):
    for package, names in source_modules().items():
        html = (site / "reference" / "api" / package / "index.html").read_text(encoding="utf-8")
        missing = sorted(name for name in names if f'id="{name}"' not in html)
        assert not missing, f"not in the API reference: {missing}"


@pytest.mark.slow
def test_no_page_loads_anything_from_the_network(site):
    external = re.compile(
        r"<(?:script|link|img|iframe|source)\b[^>]*\b(?:src|href)=\"(?:https?:)?//", re.I
    )
    offenders = [
        str(page.relative_to(site))
        for page in site.rglob("*.html")
        if external.search(page.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
    assert not any('class="mermaid"' in p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
