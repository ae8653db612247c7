"""Getting logs in: sources, format parsers, ECS normalization. Never imports ``soc``."""
