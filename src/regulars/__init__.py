"""Regulars."""
