"""The audit trail: every state change, hash-chained."""
