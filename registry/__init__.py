"""Models in the MLflow registry: logging, versions and aliases, loading (old layouts too), and
the monitoring reference every version carries."""
