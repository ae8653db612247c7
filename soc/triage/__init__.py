"""Alert triage and incidents: the analysts' queue."""
