"""Alembic migrations for the task history (shipped inside the `api` package)."""
