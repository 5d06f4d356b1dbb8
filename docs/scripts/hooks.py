"""MkDocs hooks (``hooks:`` in ``mkdocs.yml``): the pages written from the code at build time.

* **API reference**: one page per top-level package, ``reference/api/<package>.md``, holding a
  ``::: module`` block for every module found on disk under it (subpackages included), so a new
  module can never be missing; the pages and their place in the navigation follow the layers
  of the import-linter contract (``pyproject.toml``), from the core up.
* **Command line**: the ``--help`` text of ``icans`` and of every sub-command, from the typer app
  itself, where ``reference/cli.md`` holds the marker ``<!-- generated: cli-help -->``.
* **Configuration**: a table of every setting of :class:`icans.config.Settings` (nested sections
  too), its environment variable, default and meaning, where ``reference/configuration.md``
  holds ``<!-- generated: settings -->``; and of every ``[train]`` option
  (:class:`training.config.TrainConfig`) where it holds ``<!-- generated: train-config -->``.

Nothing here reaches the network; the build reads the source tree only.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
API_DIR = "reference/api"
API_NAV_TITLE = "API reference"
CLI_MARKER = "<!-- generated: cli-help -->"
SETTINGS_MARKER = "<!-- generated: settings -->"
TRAIN_MARKER = "<!-- generated: train-config -->"
ENV_PREFIX = "ICANS_"

if str(ROOT) not in sys.path:  # the hooks import the project (the CLI, the settings)
    sys.path.insert(0, str(ROOT))


# --- the API reference -------------------------------------------------------------------


def layers() -> list[list[str]]:
    """The contract's layers, top (the command line) first; siblings in contract order."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def packages() -> list[str]:
    """Every top-level package of the project, from the core up (the layers reversed); a
    package outside the contract (which tests/test_layers.py refuses) comes last."""
    on_disk = sorted(
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in {"tests", "benchmarks", "docs"}
    )
    layered = [p for layer in reversed(layers()) for p in layer]
    return [p for p in layered if p in on_disk] + [p for p in on_disk if p not in layered]


def modules(package: str) -> list[str]:
    """The dotted names of every module under ``package``: each (sub)package before its
    modules, in path order."""
    names = []
    for path in (ROOT / package).rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        key = parts[:-1] if parts[-1] == "__init__" else parts
        names.append(".".join(key))
    return sorted(names, key=lambda name: name.split("."))


def _first_line(package: str) -> str:
    """The first sentence of a package's docstring, or ''."""
    import ast

    text = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text())) or ""
    return text.split("\n\n")[0].replace("\n", " ").strip()


def api_pages() -> dict[str, str]:
    """src_uri -> Markdown of the API reference: an index and one page per package."""
    pages = {}
    layer_of = {p: i for i, layer in enumerate(reversed(layers()), start=1) for p in layer}
    index = [
        "# API reference",
        "",
        "Generated from the docstrings at build time, one page per package, every module of the "
        "package on its page. Packages are listed from the core up: each imports only packages "
        "listed before it (the [layers](../../concepts/architecture.md)).",
        "",
        "| layer | package | modules | what it holds |",
        "|---|---|---|---|",
    ]
    for package in packages():
        names = modules(package)
        blocks = "\n\n".join(f"::: {name}" for name in names)
        layer = layer_of.get(package, "-")
        pages[f"{API_DIR}/{package}.md"] = (
            f"# `{package}`\n\n"
            f"Layer {layer} of {len(layers())}; {len(names)} module(s). "
            "Generated from the docstrings: edit the code, not this page.\n\n"
            f"{blocks}\n"
        )
        summary = (_first_line(package) or "-").replace("|", "/")
        index.append(f"| {layer} | [`{package}`]({package}.md) | {len(names)} | {summary} |")
    pages[f"{API_DIR}/index.md"] = "\n".join(index) + "\n"
    return pages


def on_config(config: Any, **kwargs: Any) -> Any:
    """The navigation's ``API reference`` entry becomes the index and one page per package."""

    def expand(items: list) -> list:
        out = []
        for item in items:
            if isinstance(item, dict):
                ((title, value),) = item.items()
                if title == API_NAV_TITLE:
                    value = [f"{API_DIR}/index.md"] + [
                        {package: f"{API_DIR}/{package}.md"} for package in packages()
                    ]
                elif isinstance(value, list):
                    value = expand(value)
                out.append({title: value})
            else:
                out.append(item)
        return out

    if config.nav:
        config.nav = expand(config.nav)
    return config


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    from mkdocs.structure.files import File

    for src_uri, content in api_pages().items():
        files.append(File.generated(config, src_uri, content=content))
    return files


# --- the command line --------------------------------------------------------------------


def cli_help_markdown() -> str:
    """``icans --help`` and every sub-command's, as plain text blocks (typer's own help, without
    the terminal boxes)."""
    import typer
    import typer.main

    from cli.main import app

    sections = []

    def walk(command: Any, path: list[str], parent: Any = None) -> None:
        if hasattr(command, "rich_markup_mode"):
            command.rich_markup_mode = None  # click's plain formatter, not rich panels
        ctx = typer.Context(
            command, info_name=path[-1], parent=parent, terminal_width=96, max_content_width=96
        )
        text = command.get_help(ctx).replace("\\[", "[")
        level = "##" if len(path) == 1 else "###"  # every command in the table of contents
        sections.append(f"{level} `{' '.join(path)}`\n\n```text\n{text}\n```\n")
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name], ctx)

    walk(typer.main.get_command(app), ["icans"])
    return "\n".join(sections)


# --- the configuration -------------------------------------------------------------------


def _env_names(path: tuple[str, ...], field: Any, model: Any) -> list[str]:
    """The environment variables a setting is read from: its alias(es) if it declares any; a
    section's setting by its flat name (:data:`icans.config.FLAT_NAMES`: ``serve.public_url`` is
    ``ICANS_PUBLIC_URL``); else ``ICANS_`` + the dotted path in upper case joined by ``_``."""
    from icans.config import FLAT_NAMES

    flat = {where: name for name, where in FLAT_NAMES.items()}
    alias = getattr(field, "validation_alias", None) or getattr(field, "alias", None)
    choices = getattr(alias, "choices", None)
    if isinstance(alias, str):
        return [alias.upper()]
    if choices:
        return [c.upper() for c in choices if isinstance(c, str)]
    model_config = getattr(model, "model_config", {}) or {}
    prefix = model_config.get("env_prefix") or ENV_PREFIX
    if path in flat:
        return [(prefix + flat[path]).upper()]
    return [(prefix + "_".join(path)).upper()]


def _default(field: Any, toml: bool = False) -> str:
    """The default as it would be written: as an environment value, or in TOML."""
    from pathlib import PurePath

    if field.default_factory is not None:
        return "-"
    value = field.default
    if value is None:
        return "unset"
    if value == "" or (isinstance(value, PurePath) and str(value) in ("", ".")):
        return "derived (see meaning)"

    def text(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, tuple | list):
            return "[" + ", ".join(text(x) for x in v) + "]"
        if isinstance(v, str | PurePath) and toml:
            return f'"{v}"'
        return str(v)

    return f"`{text(value)}`"


def _bounds(field: Any) -> str:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    out = []
    for item in getattr(field, "metadata", []):
        for attr, word in words.items():
            if getattr(item, attr, None) is not None:
                out.append(f"{word} {getattr(item, attr)}")
    return f" ({', '.join(out)})" if out else ""


def leaves(model: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(dotted path, field) of every leaf setting of a pydantic model; a nested model (a
    section such as ``serve``, or ``gates`` under ``[train]``) is walked into."""
    from pydantic import BaseModel

    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += leaves(annotation, (*path, name))
        else:
            out.append(((*path, name), field))
    return out


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell: pipes escaped, placeholders not taken for HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def _meaning(field: Any) -> str:
    text = (_cell(field.description or "") + _bounds(field)).strip()
    return text or "-"


def settings_markdown() -> str:
    from icans.config import Settings

    lines = ["| environment variable (setting) | default | meaning |", "|---|---|---|"]
    for path, field in leaves(Settings):
        names = _env_names(path, field, Settings)
        # the tracking store's URI: MLflow's own variable wins (icans.config)
        if path[-1] == "tracking_uri" or (path[-1] == "uri" and "tracking" in path):
            names.append("MLFLOW_TRACKING_URI")
        envs = "<br>".join(f"`{e}`" for e in names)
        lines.append(f"| {envs}<br>(`{'.'.join(path)}`) | {_default(field)} | {_meaning(field)} |")
    return "\n".join(lines) + "\n"


def train_config_markdown() -> str:
    from training.config import TrainConfig

    lines = ["| option | default | meaning |", "|---|---|---|"]
    for path, field in leaves(TrainConfig):
        lines.append(f"| `{'.'.join(path)}` | {_default(field, toml=True)} | {_meaning(field)} |")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_help_markdown())
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_markdown())
    if TRAIN_MARKER in markdown:
        markdown = markdown.replace(TRAIN_MARKER, train_config_markdown())
    return markdown
