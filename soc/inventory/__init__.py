"""The inventory in the SOC database: agencies, government systems, their log
sources and ingest keys."""
