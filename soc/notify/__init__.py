"""Notifications of alerts by e-mail and webhooks."""
