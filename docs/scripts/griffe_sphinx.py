"""A griffe extension for the API reference: the docstrings' reST, shown as Markdown.

The code's docstrings are prose written for Sphinx: roles such as :mod:`icans.config`,
:class:`~model.risk_model.RiskModel` or :func:`refractory_day`, and now and then a reST simple
table. MkDocs renders Markdown, so, in the copy of each docstring the reference is built from
(the source files are untouched):

* a role becomes a link to the object's entry when the reference documents it, and inline code
  otherwise (an *optional* cross-reference of mkdocs-autorefs: it never fails the strict build).
  A name without a module is looked up where the docstring stands: the module's own members,
  then the names it imports; ``~`` shows the last part only, as Sphinx does;
* a simple table (``====  ====`` borders) becomes a Markdown table;
* a paragraph ending in ``::`` before a literal block ends in ``:`` (the block itself is
  indented, hence already code in Markdown);
* a placeholder such as ``<name>`` outside code is escaped, so Markdown does not take it for
  an HTML tag and drop it.

Enabled in ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?P<kind>mod|class|func|meth|data|attr|exc|obj|const):"
    r"`(?P<tilde>~?)(?P<target>[\w.\s]+?)(?P<call>\(\))?`"
)
BORDER = re.compile(r"^ *=+( +=+)+ *$")


def _resolve(target: str, module: griffe.Module) -> str:
    """The full dotted path of ``target`` as written in ``module``."""
    head, _, rest = target.partition(".")
    try:
        if head in module.members:
            return f"{module.path}.{target}"
        if head in module.imports:
            return module.imports[head] + (f".{rest}" if rest else "")
    except Exception:  # a name griffe cannot follow: keep it as written
        pass
    return target


def roles_to_refs(text: str, module: griffe.Module) -> str:
    def replace(match: re.Match) -> str:
        target = re.sub(r"\s+", "", match["target"])
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        shown += match["call"] or ""
        identifier = _resolve(target, module)
        return f'<autoref identifier="{identifier}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(replace, text)


def _table(lines: list[str]) -> list[str] | None:
    """A reST simple table (its lines, borders included) as Markdown; None if it is not one."""
    border = lines[0]
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]

    def cells(line: str) -> list[str]:
        out = []
        for i, (start, _end) in enumerate(spans):
            stop = spans[i + 1][0] if i + 1 < len(spans) else len(line)
            out.append(line[start:stop].strip())
        return out

    borders = [i for i, line in enumerate(lines) if BORDER.match(line)]
    if len(borders) != 3 or borders[0] != 0 or borders[2] != len(lines) - 1:
        return None
    header = [cells(line) for line in lines[1 : borders[1]] if line.strip()]
    body: list[list[str]] = []
    for line in lines[borders[1] + 1 : borders[2]]:
        if not line.strip():
            continue
        row = cells(line)
        if body and not row[0]:  # a continuation line: its text joins the row above
            body[-1] = [f"{a} {b}".strip() for a, b in zip(body[-1], row, strict=True)]
        else:
            body.append(row)
    if len(header) != 1:
        return None

    def md(row: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    return ["", md(header[0]), "|" + "---|" * len(spans), *(md(r) for r in body), ""]


def simple_tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if BORDER.match(lines[i]):
            found = [j for j in range(i, len(lines)) if BORDER.match(lines[j])][:3]
            table = _table(lines[i : found[-1] + 1]) if len(found) == 3 else None
            if table is not None:
                out += table
                i = found[-1] + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def literal_markers(text: str) -> str:
    return re.sub(r"(?<=\S)::$", ":", text, flags=re.MULTILINE)


CODE_SPAN = re.compile(r"(``.*?``|`[^`]*`)")


def escape_placeholders(text: str) -> str:
    """``<`` before a letter or ``/`` as ``&lt;`` outside code spans and indented blocks."""
    out = []
    for line in text.split("\n"):
        if not line.startswith("    "):
            parts = CODE_SPAN.split(line)
            line = "".join(
                part if i % 2 else re.sub(r"<(?=[A-Za-z/])", "&lt;", part)
                for i, part in enumerate(parts)
            )
        out.append(line)
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    """Rewrites each docstring once its package is loaded (the imports are known by then)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            module = obj if isinstance(obj, griffe.Module) else obj.module
            text = escape_placeholders(literal_markers(simple_tables(obj.docstring.value)))
            obj.docstring.value = roles_to_refs(text, module)
        for member in obj.members.values():
            if not member.is_alias:
                self._visit(member)
