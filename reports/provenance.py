"""Where a model's data came from, as the reports state it: synthetic or real patients.

A model card (:func:`reports.model_card.model_card`) records ``synthetic_data`` and
``training_data.provenance``; a registered model's identity
(:meth:`model.registry.RegisteredModel.identity`) carries ``provenance``. Cards and identities
written before these were recorded belong to models trained on a synthetic cohort. Kept apart
from the report sections so the patient's page (a request path) imports nothing more.
"""

from __future__ import annotations

from icans.config import INTENDED_USE

REAL_DATA_INTENDED_USE = (
    "Decision support only; not a medical device. Trained on real patient data; validated only "
    "as far as its evaluation reports show. Estimates the risk of severe (ASTCT grade 3-4) or "
    "steroid-refractory ICANS after CAR-T therapy, from the data observed up to the prediction "
    "day."
)


def intended_use(synthetic: bool) -> str:
    """The intended-use statement of a model trained on synthetic (:data:`INTENDED_USE`) or on
    real patient data."""
    return INTENDED_USE if synthetic else REAL_DATA_INTENDED_USE


def trained_on_synthetic(card: dict) -> bool:
    """Whether a model card's model learnt synthetic data: its ``synthetic_data`` flag and its
    training data's provenance; either saying synthetic is enough, and a card without either
    is synthetic."""
    flag = card.get("synthetic_data")
    provenance = (card.get("training_data") or {}).get("provenance")
    if flag is None and provenance is None:
        return True
    return bool(flag) or provenance == "synthetic"


def identity_is_synthetic(identity: dict) -> bool:
    """Whether the model of an identity learnt synthetic data (no provenance: synthetic)."""
    return identity.get("provenance", "synthetic") == "synthetic"
