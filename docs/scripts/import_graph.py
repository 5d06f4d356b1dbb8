"""The picture of the import graph on the architecture page, written from the real imports.

``uv run python docs/scripts/import_graph.py`` rewrites two committed files from
``tests/test_layers.py::import_graph()`` (every import of one project package by another, read
with ``ast``) and the layers of the import-linter contract in ``pyproject.toml``:

* ``docs/images/import-graph.svg``: the packages in their layers, top (the command line) to
  bottom (the core), with an arrow for each import that no longer path of imports already
  implies (the transitive reduction, so the picture stays readable); drawn by a small layered
  layout below (no Graphviz, no JavaScript, no network);
* ``docs/images/import-graph.mmd``: the same graph as Mermaid source with *every* import, the
  implied ones dotted.

``tests/test_docs.py`` fails when either file differs from what this script writes now, so the
picture cannot fall behind the code.
"""

from __future__ import annotations

import importlib.util
import sys
from html import escape
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SVG = ROOT / "docs" / "images" / "import-graph.svg"
MERMAID = ROOT / "docs" / "images" / "import-graph.mmd"

# drawing constants (pixels)
ROW_H = 58
BOX_W, BOX_H = 112, 30
DUMMY_W = 14
GAP = 26
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 210, 20, 20


def _layers_module():
    """``tests/test_layers.py`` as a module (the tests are not a package)."""
    spec = importlib.util.spec_from_file_location("_test_layers", ROOT / "tests" / "test_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layers_and_graph() -> tuple[list[list[str]], dict[str, set[str]]]:
    """The contract's layers (top first, siblings in contract order) and package -> packages
    it imports."""
    layers_mod = _layers_module()
    contract = next(c for c in layers_mod.CONFIG["contracts"] if c["type"] == "layers")
    layers = [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]
    graph = {package: set(targets) for package, targets in layers_mod.import_graph().items()}
    for layer in layers:
        for package in layer:
            graph.setdefault(package, set())
    return layers, graph


def transitive_reduction(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The imports not implied by a longer path of imports."""

    def reachable(start: str, without: str) -> set[str]:
        seen: set[str] = set()
        stack = [t for t in graph[start] if t != without]
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(graph[node])
        return seen

    return {(a, b) for a in graph for b in graph[a] if b not in reachable(a, b)}


def _layout(layers: list[list[str]], edges: list[tuple[str, str]]):
    """Rows of node ids (packages, and one dummy per row an edge crosses) ordered to keep the
    arrows short and uncrossed (a few barycentre sweeps, deterministic), and each edge's chain
    of node ids from importer to imported."""
    row_of = {p: i for i, layer in enumerate(layers) for p in layer}
    rows: list[list[str]] = [list(layer) for layer in layers]
    chains = []
    for a, b in edges:
        chain = [a]
        for r in range(row_of[a] + 1, row_of[b]):
            dummy = f"{a}>{b}#{r}"
            rows[r].append(dummy)
            chain.append(dummy)
        chains.append([*chain, b])
    up: dict[str, list[str]] = {n: [] for row in rows for n in row}
    down: dict[str, list[str]] = {n: [] for row in rows for n in row}
    for chain in chains:
        for x, y in pairwise(chain):
            down[x].append(y)
            up[y].append(x)

    def sweep(order: list[list[str]], r: int, neighbours: dict[str, list[str]], ref: int):
        position = {n: i for i, n in enumerate(order[ref])}
        current = {n: i for i, n in enumerate(order[r])}

        def key(n: str) -> tuple[float, int]:
            near = [position[m] for m in neighbours[n] if m in position]
            return (sum(near) / len(near) if near else current[n], current[n])

        order[r] = sorted(order[r], key=key)

    for _ in range(6):
        for r in range(1, len(rows)):
            sweep(rows, r, up, r - 1)
        for r in range(len(rows) - 2, -1, -1):
            sweep(rows, r, down, r + 1)
    return rows, chains


def _isotonic(values: list[float]) -> list[float]:
    """The non-decreasing sequence closest to ``values`` in squared distance (pool adjacent
    violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return [m for m, n in blocks for _ in range(int(n))]


def _positions(rows: list[list[str]], chains: list[list[str]], width) -> dict[str, float]:
    """x of each node's centre: every row keeps its order and spacing, and each node moves as
    near to the mean x of the nodes it is joined to as that allows (least squares, a few
    sweeps), so arrows run as straight as they can."""
    neighbours: dict[str, list[str]] = {n: [] for row in rows for n in row}
    for chain in chains:
        for x, y in pairwise(chain):
            neighbours[x].append(y)
            neighbours[y].append(x)
    x_of: dict[str, float] = {}
    for row in rows:
        x = 0.0
        for node in row:
            x_of[node] = x + width(node) / 2
            x += width(node) + GAP
    for _ in range(30):
        for row in rows:
            offsets, offset = [], 0.0
            for i, node in enumerate(row):
                if i:
                    offset += (width(row[i - 1]) + width(node)) / 2 + GAP
                offsets.append(offset)
            wanted = [
                sum(x_of[m] for m in neighbours[n]) / len(neighbours[n])
                if neighbours[n]
                else x_of[n]
                for n in row
            ]
            fitted = _isotonic([w - o for w, o in zip(wanted, offsets, strict=True)])
            for node, y, o in zip(row, fitted, offsets, strict=True):
                x_of[node] = y + o
    return {n: round(x, 1) for n, x in x_of.items()}


def render_svg(layers: list[list[str]], graph: dict[str, set[str]]) -> str:
    reduced = sorted(transitive_reduction(graph))
    rows, chains = _layout(layers, reduced)

    def width(node: str) -> int:
        return DUMMY_W if ">" in node else BOX_W

    x_of = _positions(rows, chains, width)
    left = min(x_of[n] - width(n) / 2 for n in x_of)
    x_of = {n: x - left + MARGIN_X for n, x in x_of.items()}
    total_w = max(x_of[n] + width(n) / 2 for n in x_of) + 30
    total_h = MARGIN_TOP + ROW_H * len(rows) + MARGIN_BOTTOM
    y_of = {n: MARGIN_TOP + ROW_H * r + ROW_H / 2 for r, row in enumerate(rows) for n in row}

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h:.0f}" '
        f'viewBox="0 0 {total_w:.0f} {total_h:.0f}" font-family="sans-serif" font-size="13" '
        'role="img" aria-label="Import graph of the packages, by layer">',
        "<!-- Generated by docs/scripts/import_graph.py from tests/test_layers.py::import_graph()"
        " and the layers in pyproject.toml; do not edit. -->",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#455a64"/></marker></defs>',
        f'<rect width="{total_w:.0f}" height="{total_h:.0f}" fill="#ffffff"/>',
    ]
    for r, layer in enumerate(layers):
        top = MARGIN_TOP + ROW_H * r
        fill = "#f3f6f8" if r % 2 == 0 else "#ffffff"
        out.append(f'<rect x="0" y="{top}" width="{total_w:.0f}" height="{ROW_H}" fill="{fill}"/>')
        label = " | ".join(layer) if len(layer) > 1 else layer[0]
        out.append(
            f'<text x="12" y="{top + ROW_H / 2 + 4:.0f}" fill="#607d8b" font-size="11">'
            f"layer {len(layers) - r}: {escape(label)}</text>"
        )

    # where each arrow leaves its importer's box and enters the imported one: spread along the
    # box's edge in the order of the neighbours' x, so arrows meeting at a box stay apart
    def ports(node: str, others: list[str]) -> dict[str, float]:
        spread = BOX_W * 0.6
        ordered = sorted(others, key=lambda m: (x_of[m], m))
        step = spread / max(len(ordered), 1)
        return {m: x_of[node] - spread / 2 + step * (i + 0.5) for i, m in enumerate(ordered)}

    leaving = {n: ports(n, [c[1] for c in chains if c[0] == n]) for n in graph}
    entering = {n: ports(n, [c[-2] for c in chains if c[-1] == n]) for n in graph}
    for chain in chains:
        start = (leaving[chain[0]][chain[1]], y_of[chain[0]] + BOX_H / 2)
        end = (entering[chain[-1]][chain[-2]], y_of[chain[-1]] - BOX_H / 2)
        points = [start, *((x_of[n], y_of[n]) for n in chain[1:-1]), end]
        # a Catmull-Rom curve through the points, leaving and entering the boxes vertically
        guide = [(start[0], start[1] - ROW_H), *points, (end[0], end[1] + ROW_H)]
        d = f"M {start[0]:.1f} {start[1]:.1f}"
        for i in range(1, len(guide) - 2):
            (xa, ya), (x0, y0), (x1, y1), (xb, yb) = guide[i - 1 : i + 3]
            c1 = (x0 + (x1 - xa) / 6, y0 + (y1 - ya) / 6)
            c2 = (x1 - (xb - x0) / 6, y1 - (yb - y0) / 6)
            if i == 1:
                c1 = (x0, y0 + (y1 - y0) / 3)
            if i == len(guide) - 3:
                c2 = (x1, y1 - (y1 - y0) / 3)
            d += f" C {c1[0]:.1f} {c1[1]:.1f} {c2[0]:.1f} {c2[1]:.1f} {x1:.1f} {y1:.1f}"
        out.append(
            f'<path d="{d}" fill="none" stroke="#455a64" stroke-width="1.4" '
            f'marker-end="url(#arrow)"><title>{chain[0]} imports {chain[-1]}</title></path>'
        )
    for layer in layers:
        for package in layer:
            x, y = x_of[package] - BOX_W / 2, y_of[package] - BOX_H / 2
            out.append(
                f"<g><title>{package}: imports {', '.join(sorted(graph[package])) or 'nothing'}"
                f'</title><rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
                'fill="#e8eaf6" stroke="#3f51b5" stroke-width="1.2"/>'
                f'<text x="{x_of[package]:.1f}" y="{y_of[package] + 4.5:.1f}" '
                f'text-anchor="middle" fill="#1a237e">{package}/</text></g>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_mermaid(layers: list[list[str]], graph: dict[str, set[str]]) -> str:
    reduced = transitive_reduction(graph)
    lines = [
        "%% Generated by docs/scripts/import_graph.py from tests/test_layers.py::import_graph()",
        "%% and the layers in pyproject.toml; do not edit. An arrow: imports. Dotted: an import",
        "%% that a path of solid arrows already implies.",
        "flowchart TD",
    ]
    for layer in layers:
        if len(layer) > 1:
            name = "_".join(layer)
            lines.append(f'  subgraph {name}["{" | ".join(layer)}"]')
            lines += [f"    {package}" for package in layer]
            lines.append("  end")
        else:
            lines.append(f"  {layer[0]}")
    order = [p for layer in layers for p in layer]
    for package in order:
        for target in sorted(graph[package], key=order.index):
            arrow = "-->" if (package, target) in reduced else "-.->"
            lines.append(f"  {package} {arrow} {target}")
    return "\n".join(lines) + "\n"


def render() -> dict[Path, str]:
    """Each file this script writes, with its content."""
    layers, graph = layers_and_graph()
    return {SVG: render_svg(layers, graph), MERMAID: render_mermaid(layers, graph)}


def main() -> int:
    for path, text in render().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
