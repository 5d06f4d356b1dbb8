"""Keep the data card's parameter table in step with :mod:`data.synthetic.parameters`.

``uv run python -m data.synthetic.datacard`` rewrites the block between the markers in
``data/synthetic/README.md``; a test fails when the card is out of date.
"""

from __future__ import annotations

from pathlib import Path

from data.synthetic.parameters import iter_parameters

CARD = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- parameters:begin -->", "<!-- parameters:end -->"


def _value(value: object) -> str:
    return str(value).replace("|", "\\|")


def parameter_table() -> str:
    lines = ["| parameter | value | source |", "|---|---|---|"]
    for name, value, source in iter_parameters():
        lines.append(f"| `{name}` | {_value(value)} | {source.replace('|', '/')} |")
    return "\n".join(lines)


def render(card_text: str) -> str:
    head, _, rest = card_text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{parameter_table()}\n{END}{tail}"


if __name__ == "__main__":
    CARD.write_text(render(CARD.read_text()))
    print(f"updated {CARD}")
