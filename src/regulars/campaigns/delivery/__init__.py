"""Delivery of rendered messages (SMTP)."""
