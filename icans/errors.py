"""Named exceptions and warnings a caller may want to catch.

Every error about bad input says which field (and, for tables, which row or patient) was wrong,
the value that was given and what was expected, so a clinical app or a data scientist can fix
the input without reading the code.
"""

from __future__ import annotations

from typing import Any


class IcansError(Exception):
    """Base class of every error this project raises on purpose."""


class InvalidInputError(IcansError, ValueError):
    """One input value breaks a documented rule.

    Parameters
    ----------
    field : str
        The public field name (the vocabulary of the data contract), e.g. ``"ice_score"``.
    value : Any
        The offending value, as given.
    expected : str
        The rule, in words: ``"an integer 0-10"``.
    where : str, optional
        Which record: ``"patient P0001"``, ``"row 17"``.
    """

    def __init__(self, field: str, value: Any, expected: str, where: str | None = None):
        self.field = field
        self.value = value
        self.expected = expected
        self.where = where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}={value!r} is invalid: expected {expected}")

    def as_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready dict (used for 4xx bodies and batch reports)."""
        return {
            "where": self.where,
            "field": self.field,
            "value": _jsonable(self.value),
            "expected": self.expected,
        }


class InvalidCohortError(IcansError, ValueError):
    """A table holds one or more invalid rows; ``errors`` lists every one, not only the first."""

    def __init__(self, errors: list[InvalidInputError], table: str = "cohort"):
        self.errors = errors
        self.table = table
        shown = "\n".join(f"  - {e}" for e in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} invalid value(s) in {table}:\n{shown}{more}")


class InvalidPatientError(IcansError, ValueError):
    """One patient's record breaks one or more rules; ``errors`` lists every one."""

    def __init__(self, errors: list[InvalidInputError]):
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:20])
        super().__init__(f"{len(errors)} invalid field(s): {shown}")


class CohortNotFoundError(IcansError, FileNotFoundError):
    """A cohort directory is missing or does not hold the expected tables."""


class ModelNotFoundError(IcansError, LookupError):
    """No registered model answers to the given name, version or alias."""


class ArtefactDigestError(ModelNotFoundError):
    """A logged model's files are not the ones recorded at registration, or no digest was
    recorded to check them against: refused before anything is unpickled
    (:mod:`registry.digest`).

    Parameters
    ----------
    model : str
        Which model: ``"icans-risk version 3"``, ``"baseline_logistic of run 9b75..."``.
    expected : str or None
        The SHA-256 digest recorded at registration; None when none was recorded.
    found : str
        The digest of the files read now.
    rule : str
        What was expected, in words, and what to do.
    """

    def __init__(self, model: str, expected: str | None, found: str, rule: str):
        self.model = model
        self.expected = expected
        self.found = found
        recorded = f"expected SHA-256 {expected}" if expected else "no SHA-256 digest recorded"
        super().__init__(
            f"{model} refused before loading: its artefact files hash to SHA-256 {found}, "
            f"{recorded}; {rule}"
        )


class UnknownCategoryWarning(UserWarning):
    """A categorical value was not seen in training; it is handled by a documented rule."""


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return value.item()  # numpy scalar
    except AttributeError:
        return repr(value)
