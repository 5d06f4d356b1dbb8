"""The daily routine of a CAR-T ward, as contract fields: the series charted day by day.

What every ward charts (icans-facts-3: the guidelines ask for the ICE score at least twice a
day and serial CRP, ferritin, blood counts, chemistry and fibrinogen) and IL-6, which only some
centres measure. One value per day: the day's maximum temperature, the day's worst ICE or CAPD
score, the latest laboratory value of the day. :data:`icans.contract.COURSE` ends with these
(layout generation 3); this module holds their specifications so that the contract stays one
screen of tables per concern.
"""

from __future__ import annotations

import math

from icans.astct_rules import CAPD_AGE_LIMIT_YEARS
from icans.field_spec import FieldSpec


def _daily(
    column: str,
    label: str,
    unit: str,
    low: float,
    high: float,
    note: str,
    *,
    value_key: str = "value",
    low_open: bool = False,
    age_window: tuple[float, float] | None = None,
    routine: bool = True,
) -> FieldSpec:
    """A series charted on the ward day by day: rows ``(patient_id, day, <column>)`` of the
    ``daily`` table (empty where not charted that day), ``<column>_by_day`` at the endpoint."""
    return FieldSpec(
        f"{column}_by_day",
        "day_list",
        label,
        unit,
        note=note,
        low=low,
        high=high,
        low_open=low_open,
        required=False,
        table="daily",
        column=column,
        value_key=value_key,
        layout=column,
        column_nullable=True,
        optional_column=True,
        age_window=age_window,
        routine=routine,
    )


# The plausible ranges refuse a value in the wrong unit as well as a typing error: a
# temperature in Fahrenheit (above 45), platelets per uL instead of 10^9/L (above 2,000),
# fibrinogen in g/L instead of mg/dL (below 25).
DAILY_ROUTINE: tuple[FieldSpec, ...] = (
    _daily(
        "temperature_max_c",
        "maximum temperature",
        "°C",
        30,
        45,
        "highest body temperature charted that day (fever: >= 38.0 °C, ASTCT 2019)",
    ),
    _daily(
        "ice_score",
        "ICE score",
        "points",
        0,
        10,
        "the day's lowest Immune effector Cell-associated Encephalopathy score (0-10, higher is "
        "better; ASTCT 2019), from 12 years; a patient who cannot be assessed has no score",
        value_key="score",
        age_window=(CAPD_AGE_LIMIT_YEARS, math.inf),
    ),
    _daily(
        "capd_score",
        "CAPD score",
        "points",
        0,
        32,
        "the day's highest Cornell Assessment of Pediatric Delirium score (0-32, higher is "
        "worse; ASTCT 2019), below 12 years",
        value_key="score",
        age_window=(0, CAPD_AGE_LIMIT_YEARS),
    ),
    _daily("crp_mg_per_l", "CRP", "mg/L", 0, 1_000, "C-reactive protein that day"),
    _daily("ferritin_ng_per_ml", "ferritin", "ng/mL", 0, 500_000, "ferritin that day"),
    _daily(
        "il6_pg_per_ml",
        "IL-6",
        "pg/mL",
        0,
        1_000_000,
        "interleukin-6 that day; measured at some centres only (after tocilizumab it rises: "
        "the receptor is blocked)",
        routine=False,
    ),
    _daily(
        "platelets_10e9_per_l",
        "platelets",
        "x10^9/L",
        0,
        2_000,
        "platelet count that day",
        low_open=True,
    ),
    _daily("fibrinogen_mg_per_dl", "fibrinogen", "mg/dL", 25, 2_000, "fibrinogen that day"),
    _daily(
        "lymphocytes_10e9_per_l",
        "absolute lymphocyte count",
        "x10^9/L",
        0,
        500,
        "absolute lymphocyte count that day (CAR-T cells are lymphocytes: it tracks the "
        "expansion after lymphodepletion)",
    ),
    _daily("ldh_u_per_l", "LDH", "U/L", 0, 50_000, "lactate dehydrogenase that day"),
    _daily("creatinine_mg_per_dl", "creatinine", "mg/dL", 0, 30, "creatinine that day"),
)
