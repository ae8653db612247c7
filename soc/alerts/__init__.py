"""Alerts: detections that survived the exceptions, deduplicated and kept in the
SOC database (:mod:`soc.alerts.store`)."""
