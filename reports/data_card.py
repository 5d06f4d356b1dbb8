"""The data-card summary of the reviewers' report: where the evaluated cohort comes from, its
size and case mix, and (for a generated cohort) the generator's main assumptions and a link to
its full data card, all read from the cohort's metadata (:class:`cohort.reader.CohortMetadata`).
"""

from __future__ import annotations

from typing import cast

import pandas as pd

from cohort.reader import CohortMetadata
from evaluation.held_out import Evaluation
from reports import html as h
from reports.explanations import NOT_EVIDENCE
from reports.performance import subgroup_rows

GENERATOR_FACTS = (  # (key in the generator's description, label)
    ("case_mix", "case mix"),
    ("seed", "seed"),
    ("parameters_fingerprint", "generator parameters fingerprint"),
    ("version", "generator version"),
)


def _facts(cohort: CohortMetadata) -> list[tuple[str, object]]:
    generator = cohort.generator or {}
    facts: list[tuple[str, object]] = [
        ("provenance", cohort.provenance),
        ("patients", h.num(cohort.n_patients, "{:,.0f}")),
        ("cohort fingerprint", cohort.fingerprint),
    ]
    facts += [(label, generator[key]) for key, label in GENERATOR_FACTS if key in generator]
    facts += [
        (f"rows in table '{k}'", h.num(v.get("rows"), "{:,.0f}")) for k, v in cohort.tables.items()
    ]
    return facts


def _case_mix(ev: Evaluation) -> str:
    """Patients and events per subgroup (of the first predictor's rows: they are the same)."""
    sub = ev.subgroups
    if sub.empty or "predictor" not in sub.columns:
        return ""
    first = cast(pd.DataFrame, sub[sub["predictor"] == sub["predictor"].iloc[0]])
    rows = [
        (r.subgroup, f"{r.n_patients:,}", f"{r.n_events:,}", h.num(r.observed_rate, "{:.1%}"))
        for r in subgroup_rows(first)
    ]
    return "<h3>Case mix of the evaluated patients</h3>" + h.table(
        ["group", "patients", "events (landmark rows)", "event rate per row"], rows
    )


def data_card_section(cohort: CohortMetadata, ev: Evaluation) -> str:
    """The evaluated cohort: provenance, facts, case mix, assumptions, the full data card."""
    generator = cohort.generator or {}
    parts = [
        h.p(
            "The cohort is SYNTHETIC: every row was drawn by a program from published summary "
            "numbers and stated assumptions. No real patient-level CAR-T toxicity data were "
            "used, and nothing learned from it is clinical evidence."
            if cohort.synthetic
            else "The cohort is real patient data (provenance recorded when it was imported)."
        ),
        h.table(["field", "value"], _facts(cohort)),
        _case_mix(ev),
    ]
    if generator.get("assumptions"):
        parts.append("<h3>Main assumptions</h3>" + h.ul(generator["assumptions"]))
    if cohort.synthetic:
        parts.append(h.warning(NOT_EVIDENCE))
    if generator.get("data_card"):
        card = generator["data_card"]
        parts.append(
            "<p>Full data card (process, parameters with their sources, known departures from "
            f'the literature): <a href="{h.e(card)}">{h.e(card)}</a> in the project '
            "repository.</p>"
        )
    return "".join(parts)
