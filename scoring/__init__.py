"""Batch scoring: every landmark row of a cohort scored by a registered model (``icans score``)."""
