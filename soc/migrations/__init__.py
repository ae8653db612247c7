"""Alembic migrations of the SOC database, run by :func:`soc.db.migrate`."""
