"""The data dictionary (``docs/data-dictionary.md``), written from the contract's field specs.

``uv run python -m cohort.dictionary`` rewrites the file; a test fails when it is out of date, so
the documentation can never disagree with what the endpoint and the cohort reader check.
"""

from __future__ import annotations

from pathlib import Path

from cohort import observations
from cohort.schema import TABLES, _fields
from icans.charting import AGE_WINDOWED, GRADE_BOUNDING, age_span
from icans.contract import BASELINE, COURSE, PATIENT_ID_MAX_LENGTH, PREDICTION_DAY
from icans.field_spec import FieldSpec
from icans.products import (
    ADULT_AGE_YEARS,
    ADULT_ONLY_DISEASES,
    INVESTIGATIONAL,
    PRODUCT_LABELS,
    SUPPORTED_TARGETS,
)
from icans.steroids import MIN_REFRACTORY_GRADE, PERSISTENCE_DAYS, TREATMENT_MG

# the persistence readings in words: "2 and 3 days after the start"
_AFTER = " and ".join(str(k) for k in PERSISTENCE_DAYS) + " days after the start"

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "data-dictionary.md"

_TYPE = {
    "number": "number",
    "integer": "whole number",
    "boolean": "true/false",
    "category": "text (one of the values)",
}
_TABLE_ROLE = {
    "patients": "one row per patient: the baseline fields known before infusion",
    "daily": "one row per patient and observed day: the day's ASTCT grades, treatment and "
    "charted series",
    "measurements": "one row per CAR-T blood sample",
    "outcomes": "one row per patient: what happened by day 28, never an input of the model",
}


def _cell(text: str) -> str:
    return text.replace("|", "/")


def _row(column: str, spec: FieldSpec, required: str) -> str:
    kind = "whole number" if spec.whole else _TYPE.get(spec.kind, "number")
    return (
        f"| `{column}` | {kind} | {spec.unit or '-'} | {_cell(spec.rule())} | {required} | "
        f"{_cell(spec.label)} | {_cell(spec.note) or '-'} |"
    )


HEADER = (
    "| column | type | unit | allowed values | required | label | notes |",
    "|---|---|---|---|---|---|---|",
)


def _scores() -> list[str]:
    """The rules of the charted scores (:mod:`icans.charting`), in words from the contract."""
    windows = "; ".join(f"`{f.table_column}` {age_span(f)}" for f in AGE_WINDOWED)
    scores = " or ".join(f"`{f.table_column}`" for f in GRADE_BOUNDING)
    return [
        "- A score is charted only at the ages ASTCT 2019 uses it (age at infusion,",
        f"  `patients.age_years`): {windows}.",
        f"- A day's `icans_grade` is at least the grade its {scores} gives on its own",
        "  (ASTCT 2019: the ICANS grade is the worst of its domains).",
    ]


def _observations() -> list[str]:
    """The long form of the daily series (:mod:`cohort.observations`)."""
    lines = [
        "",
        f"#### `{observations.NAME}` (optional: the charted series, one observation per row)",
        "",
        "Columns " + ", ".join(f"`{c}`" for c in observations.COLUMNS) + ": the daily series",
        "as a hospital system exports them, converted to the units above and pivoted into the",
        "`daily` rows (each observation needs its patient's `daily` row for that day; a cell",
        "the `daily` table already fills may not be given again). See",
        "[the import format](import-format.md#the-daily-series-one-observation-per-row).",
        "",
        "| `series` | unit (converted) | other units accepted | several on one day |",
        "|---|---|---|---|",
    ]
    words = {"last": "the last in the file", "max": "the highest", "min": "the lowest"}
    for name, spec in observations.SERIES.items():
        others = ", ".join(
            f"{u or '(empty)'} ({observations.conversion_text(f, o)})"
            for u, (f, o) in observations.UNITS[name].items()
        )
        lines.append(
            f"| `{name}` | {spec.unit} | {_cell(others)} | {words[observations.day_value(name)]} |"
        )
    return lines


def render() -> str:
    _keys = ", ".join(f"`{k}`" for k in dict.fromkeys(spec.value_key for spec in COURSE))
    lines = [
        "# Data dictionary",
        "",
        "Written by `uv run python -m cohort.dictionary` from the field specifications in",
        "`icans/contract.py`; the endpoint's request model and the cohort reader's checks are",
        "derived from the same specifications, so this page is what both accept.",
        "",
        "## Cohort tables",
        "",
        "A cohort is a directory with one file per table (Parquet or CSV) and a `manifest.json`.",
        "Columns not listed here may be present and are ignored. Every table has `patient_id`",
        f"(text, at most {PATIENT_ID_MAX_LENGTH} characters).",
    ]
    for table in TABLES:
        lines += ["", f"### `{table}` ({_TABLE_ROLE[table]})", "", *HEADER]
        for spec, nullable in _fields(table):
            if spec.optional_column:
                required = "no (optional column)"
            else:
                required = "yes" if not nullable else "no (may be empty)"
            lines.append(_row(spec.table_column, spec, required))
        if table in ("daily", "measurements"):
            lines += ["", "Each (`patient_id`, `day`) at most once."]
        if table == "daily":
            lines += _observations()
    lines += [
        "",
        "## Rules across tables",
        "",
        "Checked by `icans cohort validate` and on import (`cohort.consistency`); the outcome",
        "columns must say what the recorded course shows. Course days may be missing, so only",
        "what was recorded can contradict them.",
        "",
        "- Every row of `daily`, `measurements` and `outcomes` belongs to a patient of",
        "  `patients`; every patient has one `outcomes` row.",
        "- `icans_max_grade` is at least the worst ICANS grade recorded; `severe_icans` is true",
        "  exactly when it is 3 or more (a recorded grade 3 makes it true).",
        "- `steroid_refractory_icans` is true when, after the steroid start (the first day with",
        f"  ICANS grade >= 1 and at least {TREATMENT_MG:g} mg dexamethasone-equivalent), the ICANS",
        f"  grade recorded {_AFTER} is still at least the start grade and at least",
        f"  {MIN_REFRACTORY_GRADE} (refractory on the later day), or anakinra or intrathecal",
        "  therapy is recorded on a day after the start (`anakinra_doses` or `intrathecal_doses`",
        "  above 0, optional columns; refractory that day), whichever comes first",
        "  (`icans.steroids`). Persistence is judged only when both readings and the day before",
        "  the start are recorded; without the second-line columns no escalation can be seen.",
        "- `severe_or_refractory_icans` is true exactly when either is; `event_day` is then the",
        "  first day either was met (the first grade >= 3, or the day the ICANS became",
        "  steroid-refractory), and is empty otherwise.",
        "- `icans_onset_day` is the first day with ICANS grade >= 1.",
        "- Nothing is recorded after `death_day`; an event precedes the death; `death_cause` is",
        "  given exactly when `death_day` is.",
        *_scores(),
        "",
        "## Supported products",
        "",
        "A patient whose CAR target is not given for the disease, or a child with a disease",
        "without paediatric CAR-T practice, is refused by the endpoint and by the cohort reader",
        "alike (both costimulatory domains are accepted for every target).",
        "",
        "| CAR target | diseases |",
        "|---|---|",
        *(f"| `{t}` | {', '.join(d)} |" for t, d in SUPPORTED_TARGETS.items()),
        "",
        f"Adults only (age at least {ADULT_AGE_YEARS}): {', '.join(ADULT_ONLY_DISEASES)}.",
        "",
        "A licensed product named in `car_product` (optional) must also match its label: its",
        "CAR target and costimulatory domain, and one of its diseases at the ages the label",
        f"gives there; `{INVESTIGATIONAL}` (any other product) may be any of the above.",
        "",
        "| `car_product` | CAR target | costimulatory domain | diseases | label |",
        "|---|---|---|---|---|",
        *(
            f"| `{p}` | {label.car_target} | {label.costimulatory_domain} | "
            + ", ".join(
                d + (f" ({label.age_rule(d)})" if label.age_rule(d) else "") for d in label.diseases
            )
            + f" | {label.source} |"
            for p, label in PRODUCT_LABELS.items()
        ),
        "",
        "## One patient at the endpoint (`POST /v1/risk`)",
        "",
        'The same fields, by name. A course field is a list of `{"day": d, <key>: v}`, the key',
        f"named in its type below ({_keys}), with each day at most once and no day after",
        "`day_since_infusion`. Optional fields may be left out: they are treated as missing,",
        "never as 0, and listed in the response's `missing_inputs` (except anakinra and",
        "intrathecal doses, which no predictor reads). A patient who has already met the",
        "outcome is refused: ICANS grade 3 or more, or steroid-refractory ICANS (the rule above,",
        "judged by `icans.steroids` on the grades, corticosteroid, anakinra and intrathecal",
        "doses sent). The ICE and CAPD scores follow the rules across tables above (age",
        "window, and an ICANS grade at least their own).",
        "",
        "| field | type | unit | allowed values | required | label | notes |",
        "|---|---|---|---|---|---|---|",
        f"| `patient_id` | text | - | at most {PATIENT_ID_MAX_LENGTH} characters | no | "
        "identifier | opaque; never logged |",
    ]
    for spec in BASELINE:
        lines.append(_row(spec.name, spec, "yes" if spec.required else "no"))
    lines.append(_row(PREDICTION_DAY.name, PREDICTION_DAY, "yes"))
    for spec in COURSE:
        rule = spec.rule(spec.request_high) if spec.request_high is not None else spec.rule()
        lines.append(
            f"| `{spec.name}` | list of `{{day, {spec.value_key}}}` | {spec.unit or '-'} | "
            f"{_cell(rule)} | no | {_cell(spec.label)} | {_cell(spec.note)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOCUMENT.write_text(render())
    print(f"updated {DOCUMENT}")
