"""Signed links in messages: unsubscribe and 1-5 ratings.

A token is ``<send id>.<purpose>.<signature>``, the signature an HMAC-SHA256
of the rest under the app state's signing key (`StateStore.signing_key`). It
holds no personal data and cannot be forged or altered; nothing secret is
stored per link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["make_token", "read_token"]


def _sign(key: bytes, text: str) -> str:
    mac = hmac.new(key, text.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make_token(key: bytes, send_id: int, purpose: str) -> str:
    """A token for `purpose` (``u`` unsubscribe, ``r`` rating) of send `send_id`."""
    text = f"{send_id}.{purpose}"
    return f"{text}.{_sign(key, text)}"


def read_token(key: bytes, token: str, purpose: str) -> int | None:
    """The send id in `token` if it is genuine and for `purpose`, else None."""
    parts = token.split(".")
    if len(parts) != 3 or parts[1] != purpose or not parts[0].isdigit():
        return None
    text = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_sign(key, text), parts[2]):
        return None
    return int(parts[0])
