"""The public vocabulary shared by the cohort, the feature pipeline, the endpoint and the reports.

Field names and enumerations of the data contract; do not rename (add freely). Units are in the
names: ``dose_cells_per_kg``, ``marrow_blasts_pct``, ``ldh_u_per_l`` ...
"""

from __future__ import annotations

DISEASES = ("LBCL", "PMBCL", "B-ALL", "MCL", "FL", "CLL", "MM", "AML", "T-ALL", "BPDCN")
CAR_TARGETS = ("CD19", "CD19-CD22", "BCMA", "CLL1", "CD123", "CD7")
COSTIMULATORY_DOMAINS = ("CD28", "4-1BB")
LYMPHODEPLETION_REGIMENS = ("flu_cy", "bendamustine", "other")

# Disease groups used as a predictor (fewer levels than diseases, each with enough patients).
DISEASE_GROUPS = {
    "LBCL": "b_cell_lymphoma",
    "PMBCL": "b_cell_lymphoma",
    "MCL": "b_cell_lymphoma",
    "FL": "b_cell_lymphoma",
    "CLL": "b_cell_lymphoma",
    "B-ALL": "b_all",
    "MM": "myeloma",
    "AML": "myeloid",
    "BPDCN": "myeloid",
    "T-ALL": "t_all",
}

LAB_FIELDS = (
    "ldh_u_per_l",
    "crp_mg_per_l",
    "ferritin_ng_per_ml",
    "platelets_10e9_per_l",
    "creatinine_mg_per_dl",
)

HORIZON_DAYS = 28  # the target is assessed through day 28
MAX_ICANS_GRADE_BEFORE_EVENT = 2  # a patient at grade >= 3 has already had the event
