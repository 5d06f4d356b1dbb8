"""The data card documents the parameters the generator really uses."""

from data.synthetic.datacard import CARD, render


def test_data_card_parameter_table_is_current():
    text = CARD.read_text()
    assert text == render(text), "run: uv run python -m data.synthetic.datacard"


def test_data_card_has_the_required_sections():
    text = CARD.read_text()
    for heading in (
        "## The process",
        "## True risk",
        "## Case-mix presets",
        "## Known departures from the literature",
        "## Data dictionary",
        "## Parameters",
        "selected on the outcome",
    ):
        assert heading in text, heading
