"""The SOC: pipeline runner, stores, API, CLI."""

__version__ = "0.1.0"
