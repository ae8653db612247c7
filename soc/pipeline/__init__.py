"""The pipeline: sources → parse → normalize → enrich → (detect) → sinks."""
