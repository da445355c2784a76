"""Holdout groups: a fixed share of each flow's eligible customers gets nothing.

Membership is a hash of the flow name and the customer id, so a customer is
in the same group on every run and for every step of a flow, needs no
stored randomness, and lands in different groups for different flows.
"""

from __future__ import annotations

import hashlib

__all__ = ["in_holdout"]


def in_holdout(flow: str, customer_id: str, share: float) -> bool:
    """Whether `customer_id` is in `flow`'s holdout group of size `share` (0-1)."""
    digest = hashlib.sha256(f"{flow}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
