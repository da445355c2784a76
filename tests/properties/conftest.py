"""Hypothesis settings: the `ci` profile runs everywhere (no deadline: CI is slow)."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")
