"""Monitoring of served predictions (``icans monitor``): a window of the service's prediction
log compared with the training reference of the model version that answered.

The reference is logged by every training run (:mod:`registry.reference`); the command
reads the window (:mod:`monitoring.window`), joins known outcomes (:mod:`monitoring.outcomes`),
compares the clinical inputs (:mod:`monitoring.columns`, :mod:`monitoring.drift`, with
Evidently through :mod:`monitoring.evidently_compat`) and the predicted risks
(:mod:`monitoring.risk`), estimates performance without outcomes (:mod:`monitoring.estimate`)
and measures it with them (:mod:`monitoring.realised`), the same per horizon
(:mod:`monitoring.by_horizon`), judges the thresholds
(:mod:`monitoring.thresholds`) and writes the reports (:mod:`monitoring.report`,
:mod:`monitoring.summary`); :mod:`monitoring.monitor` runs it all. Nothing here is imported
by the service.
"""
