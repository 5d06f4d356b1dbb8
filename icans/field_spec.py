"""The type of one field of the data contract, and how a field's rule and values read in words.

:class:`FieldSpec` is what :mod:`icans.contract` declares each field with: its name, kind, unit,
clinical label, range or enumeration, and where it lives in the cohort tables. The type and its
wording (:meth:`FieldSpec.rule` for an error message, :meth:`FieldSpec.text` for a value shown to
clinicians, :func:`significant` for a number) live here, apart from the contract's field tables,
so that the contract reads as the list of fields it is and the modules that only handle a field
(the request model, the cohort schema, the data dictionary) need not import the tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, cast

Kind = Literal["number", "integer", "boolean", "category", "day_list"]


@dataclass(frozen=True)
class FieldSpec:
    """One field of the contract.

    ``low``/``high`` bound a number (``low_open``: strictly above ``low``); ``values`` enumerate a
    category. ``required``: the endpoint refuses a request without it and the cohort table
    refuses a missing value. A ``day_list`` is a course observed day by day: a JSON list of
    ``{"day": d, <value_key>: v}`` at the endpoint, rows ``(patient_id, day, <column>)`` of
    ``table`` in a cohort, and the block ``<layout>_d00`` .. ``<layout>_d28`` of the raw layout.
    """

    name: str
    kind: Kind
    label: str
    unit: str = ""
    fmt: str = ""  # format of a value (without the unit); empty: three significant digits
    note: str = ""  # when or how it is measured, for the data dictionary and the inputs table
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    values: tuple[str, ...] = ()
    required: bool = True
    table: str = "patients"
    column: str = ""  # column in ``table``; the field's name when empty
    optional_column: bool = False  # the table may lack the column altogether
    # measured only in these diseases (empty: in every disease); elsewhere it is not missing
    diseases: tuple[str, ...] = ()
    # day lists only
    value_key: str = ""  # "grade", "score", "value", "mg" or "doses"
    layout: str = ""  # series name in the raw layout (the names of models already logged)
    column_nullable: bool = False  # a row of the table may leave this column empty
    request_high: float | None = None  # a stricter upper bound at the endpoint
    # charted only for patients aged ``low <= age_years < high`` (the ICE score from 12 years,
    # CAPD below 12: ASTCT 2019); a value outside the window is refused, not ignored
    age_window: tuple[float, float] | None = None
    # charted at every CAR-T centre; False: at some centres only (CAR-T counts by flow
    # cytometry, IL-6: icans-facts-3), so leaving it out is the usual case, not a gap
    routine: bool = True

    @property
    def table_column(self) -> str:
        return self.column or self.name

    @property
    def whole(self) -> bool:
        """Whether values are whole numbers: an integer field, or a day list of grades, scores or
        doses counted (``value_key`` "grade", "score" or "doses"); mg, lab values and cell
        counts are real numbers."""
        return self.kind == "integer" or self.value_key in ("grade", "score", "doses")

    def rule(self, high: float | None = None) -> str:
        """The allowed values in words: 'a number from 0 to 100', 'one of CD28, 4-1BB'."""
        high = self.high if high is None else high
        if self.kind == "category":
            return "one of " + ", ".join(self.values)
        if self.kind == "boolean":
            return "true or false"
        noun = "a whole number" if self.whole else "a number"
        assert self.low is not None and high is not None  # every number field has its range
        if self.low_open:
            return f"{noun} above {_n(self.low)} and at most {_n(high)}"
        return f"{noun} from {_n(self.low)} to {_n(high)}"

    def text(self, value: float | str | bool | None) -> str:
        """A value in clinical units: '45%', '350 U/L', 'yes'; 'not given' when missing."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "not given"
        if self.kind == "boolean":
            return "yes" if value else "no"
        if self.kind == "category":
            return str(value)
        # a number or integer field holds a number (a validated value), never a str
        shown = self.fmt.format(value) if self.fmt else significant(cast(float, value))
        return f"{shown}{self.unit}" if self.unit == "%" else f"{shown} {self.unit}".rstrip()


def significant(x: float, digits: int = 3) -> str:
    """A number to ``digits`` significant digits, never in exponent form, without trailing
    zeros: 287.35 -> '287', 1234.5 -> '1,234', 0.934 -> '0.934', 45.25 -> '45.2', 61.0 -> '61'."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _n(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"
