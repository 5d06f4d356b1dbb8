"""Infrastructure the product runs on: the local shared MLflow tracking server and its
PostgreSQL."""
