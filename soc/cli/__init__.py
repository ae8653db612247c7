"""The ``soc`` command line."""
