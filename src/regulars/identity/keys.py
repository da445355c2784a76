"""Link keys: the form of an email or phone that identity resolution compares.

Importers store emails trimmed and lower-cased and phones as digits with an
optional leading ``+`` (see `regulars.ingest.parse`). Resolution goes one step
further, by the store's rules:

- email: ``anna+shop@example.com`` links with ``anna@example.com`` unless the
  store keeps plus-tags (`IdentitySettings.plus_tags`);
- phone: E.164 (``+4930123456``). A number written with its country code is
  already E.164 once punctuation is gone; a national number (``030 123456``)
  is read with the `phonenumbers` library in the store's default country. A
  national number with no default country set links only with the same digits.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["email_keys", "phone_key", "phone_keys"]

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def email_keys(emails: pa.Array | pa.ChunkedArray, *, plus_tags: bool) -> pa.Array:
    """Link keys of normalised emails; NULL where the text is not an email.

    With `plus_tags` false, ``local+tag@domain`` becomes ``local@domain``.
    """
    emails = pc.utf8_lower(pc.utf8_trim_whitespace(emails))
    valid = pc.match_substring_regex(emails, r"^[^@\s]+@[^@\s]+$")
    if not plus_tags:
        emails = pc.replace_substring_regex(emails, r"^([^+@]+)\+[^@]*@", r"\1@")
    keys = pc.if_else(valid, emails, pa.scalar(None, pa.string()))
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


@functools.lru_cache(maxsize=65536)
def phone_key(phone: str, default_country: str | None) -> str | None:
    """Link key of one normalised phone (digits, optional leading ``+``).

    Returns E.164 when the number is known in full, ``national:DIGITS`` when
    it lacks a country and none is set, and None when it cannot be a number.
    """
    if _E164.match(phone):
        return phone
    if phone.startswith("00") and _E164.match("+" + phone[2:]):
        return "+" + phone[2:]
    if default_country is None:
        digits = phone.lstrip("+")
        return f"national:{digits}" if len(digits) >= 6 else None
    try:
        parsed = phonenumbers.parse(phone, default_country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def phone_keys(
    phones: pa.Array | pa.ChunkedArray, *, default_country: str | None
) -> pa.Array:
    """`phone_key` of each phone; each distinct number is parsed once.

    Numbers already in E.164 form (most, in an export) are kept as they are
    without a trip through Python.
    """
    e164 = pc.match_substring_regex(phones, _E164.pattern)
    others = pc.filter(phones, pc.invert(pc.fill_null(e164, True)))
    values = pc.unique(others).to_pylist()
    keyed = {v: phone_key(v, default_country) for v in values if v is not None}
    if keyed:
        index = pc.index_in(phones, value_set=pa.array(list(keyed), pa.string()))
        parsed = pc.take(pa.array(list(keyed.values()), pa.string()), index)
    else:
        parsed = pa.nulls(len(phones), pa.string())
    keys = pc.if_else(pc.fill_null(e164, False), phones, parsed)
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
