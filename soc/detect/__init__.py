"""The detection engine: Sigma rules compiled for streaming, correlation, alerts."""

from sigma.modifiers import SigmaWideModifier, modifier_mapping

# The Sigma specification names UTF-16LE encoding ``utf16le`` (``wide`` is its alias);
# pySigma 1.x knows only ``wide``. The mapping is the dict pySigma's parser reads.
modifier_mapping.setdefault("utf16le", SigmaWideModifier)
