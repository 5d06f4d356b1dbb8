"""Keep the data card in step with the generator.

``uv run python -m data.synthetic.datacard`` rewrites the parameter table between its markers in
``data/synthetic/README.md`` from :mod:`data.synthetic.parameters`; a test fails when the card
is out of date. ``uv run python -m data.synthetic.datacard --realism DIR [DIR ...]`` also
rewrites the realism block from the summaries of generated cohorts (one per case mix).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

from data.synthetic.parameters import iter_parameters

CARD = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- parameters:begin -->", "<!-- parameters:end -->"
REALISM_BEGIN, REALISM_END = "<!-- realism:begin -->", "<!-- realism:end -->"


def _value(value: object) -> str:
    return str(value).replace("|", "\\|")


def parameter_table() -> str:
    lines = ["| parameter | value | source |", "|---|---|---|"]
    for name, value, source in iter_parameters():
        lines.append(f"| `{name}` | {_value(value)} | {source.replace('|', '/')} |")
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, body: str) -> str:
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def render(card_text: str) -> str:
    return _replace(card_text, BEGIN, END, parameter_table())


def _verdict(row) -> str:
    """yes, NO, or NO with the known departure it is (a design limit, explained below)."""
    if bool(row["within"]):
        return "yes"
    return f"NO (known departure: {row['departure']})" if row["departure"] else "**NO**"


def realism_block(cohort_dirs: list[Path]) -> str:
    """The realism tables, seed-paper phenotypes and true-risk AUROC of each cohort."""
    from data.synthetic.summary import summarise

    parts = []
    for directory in cohort_dirs:
        s = summarise(directory)
        parts.append(f"**{s.metadata.describe()}**\n")
        parts.append("| metric | group | n | value | published | in range |")
        parts.append("|---|---|---:|---:|---:|---|")
        for _, r in s.realism.iterrows():
            share = cast(float, r["high"]) <= 1.0
            fmt = (lambda v: f"{v:.1%}") if share else (lambda v: f"{v:g}")
            parts.append(
                f"| {r['metric']} | {r['group']} | {r['patients']:,} | {fmt(r['value'])} | "
                f"{fmt(r['low'])}-{fmt(r['high'])} | {_verdict(r)} |"
            )
        phenotypes = "; ".join(f"{str(k).strip()}: {v:,}" for k, v in s.seed_phenotypes.items())
        parts.append(f"\nPatients like the source papers': {phenotypes}.")
        if s.true_risk_auroc is not None:
            auroc = s.true_risk_auroc["auroc"]
            days = ", ".join(f"day {d} {auroc[d]:.3f}" for d in (0, 1, 3, 5, 7, 10, 14))
            parts.append(f"True-risk AUROC by landmark: {days}.\n")
    return "\n".join(parts)


if __name__ == "__main__":
    text = render(CARD.read_text())
    if "--realism" in sys.argv:
        dirs = [Path(a) for a in sys.argv[sys.argv.index("--realism") + 1 :]]
        text = _replace(text, REALISM_BEGIN, REALISM_END, realism_block(dirs))
    CARD.write_text(text)
    print(f"updated {CARD}")
