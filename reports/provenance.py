"""Where a model's data came from, as the reports state it: synthetic or real patients.

A model card (:func:`reports.model_card.model_card`) records ``synthetic_data`` and
``training_data.provenance``; a registered model's identity
(:meth:`registry.store.RegisteredModel.identity`) carries ``provenance``. Cards and identities
written before these were recorded belong to models trained on a synthetic cohort. Kept apart
from the report sections so the patient's page (a request path) imports nothing more. The
statements themselves are the core's (:func:`icans.config.intended_use`).
"""

from __future__ import annotations


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
