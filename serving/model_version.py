"""A registered model version a service worker answers with, loaded, checked and warmed up.

One object per version: a roll-out (:mod:`serving.rollout`) builds the next one whole, then
swaps it in, so everything a response says comes from one version.

Everything clinical (features, model, explanations, warnings) is the request runtime's
(:class:`runtime.assessor.Assessor`); this module only ties a registered version to it.
"""

from __future__ import annotations

from icans.config import Settings, intended_use
from registry.store import RegisteredModel, load_registered
from reports.provenance import trained_on_synthetic
from reports.registry_io import logged_report
from runtime.assessor import Assessment, Assessor


class ModelRuntime:
    """A registered model, loaded, checked and warmed up."""

    def __init__(self, registered: RegisteredModel):
        self.registered = registered
        self.ref = registered.ref
        self.card = registered.card
        self.trained_at = registered.trained_at
        self.model = registered.model
        self.synthetic = trained_on_synthetic(registered.card)
        self.intended_use = intended_use(self.synthetic)  # every answer's disclaimer
        self.assessor = Assessor(registered.model)  # compiled, and one patient assessed
        # the version's reviewers' report, linked from every CDS card (None if never logged)
        self.model_card_page = logged_report(registered.ref.run_id)

    @classmethod
    def load(cls, model_uri: str, settings: Settings) -> ModelRuntime:
        """Load from the registry; raise ModelNotFoundError (with what to run) if impossible,
        and InvalidInputError naming ``cds_indicator_horizon`` when the version does not
        estimate the horizon the CDS cards are coloured by (before it is compiled: a worker
        then does not start, and a roll-out keeps the version it has, :mod:`serving.rollout`)."""
        registered = load_registered(model_uri, settings)
        ref = registered.ref
        settings.cds.check_model_horizons(
            registered.model.horizons_, f"{ref.name} version {ref.version}"
        )
        return cls(registered)

    def identity(self) -> dict:
        return self.registered.identity()

    def assess(self, patients: list) -> list[Assessment]:
        return self.assessor.assess(patients)
