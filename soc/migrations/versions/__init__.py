"""Migration scripts, one revision a file (Alembic skips this ``__init__``)."""
