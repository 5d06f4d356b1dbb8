"""Building blocks of the self-contained HTML reports (the reviewers' report, the patient's).

No JavaScript and no external resources: CSS is inline and figures are embedded base64 PNGs, so a
report can be attached to a review or archived as it is, and read offline. Every text value goes
through :func:`e` (``html.escape``); callers never interpolate unescaped text.
"""

from __future__ import annotations

import base64
import html
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

SYNTHETIC_WARNING = (
    "Decision support trained and evaluated on SYNTHETIC data only. Not validated on real "
    "patients. Not a medical device. Not for clinical use."
)

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;margin-top:2em}h3{margin-top:1.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}tbody tr:nth-child(even){background:#fafafa}
.warning{background:#fff3cd;border:1px solid #e0c060;padding:.6em}
.headline{font-size:1.3em}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
nav ul{columns:2}
"""


def e(value: object) -> str:
    """HTML-escaped text (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def p(text: str, cls: str = "") -> str:
    attr = f' class="{e(cls)}"' if cls else ""
    return f"<p{attr}>{e(text)}</p>"


def ul(items: Iterable[str]) -> str:
    return "<ul>" + "".join(f"<li>{e(x)}</li>" for x in items) + "</ul>"


def table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    """A table; with an empty ``header`` it has no header row (a list of facts)."""
    head = "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    attr = f' class="{e(cls)}"' if cls else ""
    return f"<table{attr}>{head if header else ''}<tbody>{body}</tbody></table>"


def img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{e(alt)}" src="data:image/png;base64,{data}"></figure>'


def num(x: object, fmt: str = "{:.3f}") -> str:
    """A number for a table cell; '-' when missing or not finite."""
    try:
        v = float(x)  # pyright: ignore[reportArgumentType]  # float() decides; TypeError is '-'
    except (TypeError, ValueError):
        return "-"
    return fmt.format(v) if np.isfinite(v) else "-"


_EMBEDDED = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def embedded_figures(page: str) -> dict[str, bytes]:
    """Every figure embedded by :func:`img` in ``page``, as ``{"<slug of alt>.png": png}``.

    Lets a training run log the report's figures as files that are byte for byte the ones in
    the report, without a second code path that draws them.
    """
    out: dict[str, bytes] = {}
    for alt, data in _EMBEDDED.findall(page):
        name = slug(html.unescape(alt)) or "figure"
        stem, k = name, 2
        while f"{name}.png" in out:
            name, k = f"{stem}-{k}", k + 1
        out[f"{name}.png"] = base64.b64decode(data)
    return out


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def warning(strong: str, text: str = "") -> str:
    """A warning box: ``strong`` in bold, then ``text`` (both escaped)."""
    rest = f" {e(text)}" if text else ""
    return f'<p class="warning"><strong>{e(strong)}</strong>{rest}</p>'


def nav(titles: Iterable[str]) -> str:
    """A table of contents linking to the headings :func:`headed` gives ``titles``."""
    return (
        "<nav><ul>"
        + "".join(f'<li><a href="#{slug(t)}">{e(t)}</a></li>' for t in titles)
        + "</ul></nav>"
    )


def headed(
    titles: Sequence[str],
    bodies: Mapping[str, str],
    *,
    level: int = 2,
    id_prefix: str = "",
    section: bool = True,
) -> str:
    """The body of each title in ``titles`` order, under a heading ``<h{level}>`` whose id is
    ``id_prefix`` + the title's :func:`slug` (what :func:`nav` links to); each heading and body
    in a ``<section>`` unless ``section`` is false. A title without a body is a KeyError."""
    parts = [
        f'<h{level} id="{e(id_prefix + slug(t))}">{e(t)}</h{level}>{bodies[t]}' for t in titles
    ]
    if section:
        parts = [f"<section>{x}</section>" for x in parts]
    return "".join(parts)


def document(title: str, body: str, *, synthetic: bool = True) -> str:
    """A whole HTML document: title, the synthetic-data banner (unless ``synthetic`` is false:
    a document about a model trained on real data), then ``body``."""
    banner = warning(SYNTHETIC_WARNING) if synthetic else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{e(title)}</h1>{banner}{body}</body></html>\n"
    )


def write_atomically(text: str, out: Path) -> Path:
    """Write ``text`` to ``out`` through a temporary sibling renamed into place.

    The temporary file is created with ``open(..., "x")`` (not ``mkstemp``), so the report gets
    the usual permissions of the user's umask rather than 0600.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
