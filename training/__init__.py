"""Training runs: splits, tuning, fitting, evaluation, quality gates, recording in MLflow."""
