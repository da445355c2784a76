"""Segment members as CSV, in the column layouts email tools import.

Layouts:

- ``csv``: every field of the segment language, named as in it.
- ``klaviyo``: Klaviyo's list import; "Email" first, then Klaviyo's own
  properties ("Phone Number", "First Name", "Last Name", "Country") and
  Regulars figures as custom properties.
- ``mailchimp``: Mailchimp's audience import; "Email Address" first, then
  "First Name", "Last Name", "Phone Number" and "Tags" (the segment name).

Marketing layouts (``klaviyo``, ``mailchimp``) leave out customers without
marketing consent (``accepts_marketing`` not true) and customers without an
email address, unless consent is waived explicitly; the result says how many
were left out and why. Phone numbers are given only when already in E.164
form (a leading ``+``), as both tools require.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regulars.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["LAYOUTS", "ExportResult", "write_members"]

#: layout -> (is a marketing list, [(header, field or None)]).
LAYOUTS: dict[str, tuple[bool, list[tuple[str, str | None]]]] = {
    "csv": (False, []),  # every field, filled in by `write_members`
    "klaviyo": (True, [
        ("Email", "email"), ("Phone Number", "phone"), ("First Name", "first_name"),
        ("Last Name", "last_name"), ("Country", "country"),
        ("Regulars Segment", None), ("Orders", "orders"), ("Net Revenue", "net_revenue"),
        ("Days Since Last Order", "days_since_last_order"), ("P Alive", "p_alive"),
        ("CLV", "clv"), ("Risk Tier", "risk_tier"), ("RFM Segment", "rfm_segment"),
    ]),
    "mailchimp": (True, [
        ("Email Address", "email"), ("First Name", "first_name"),
        ("Last Name", "last_name"), ("Phone Number", "phone"), ("Tags", None),
    ]),
}  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    """How many members were written and how many left out, by reason."""

    path: str
    layout: str
    written: int
    without_consent: int
    without_email: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "path": self.path, "layout": self.layout, "written": self.written,
            "left_out_without_consent": self.without_consent,
            "left_out_without_email": self.without_email,
        }  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def write_members(
    members: pa.Table,
    path: str,
    *,
    layout: str = "csv",
    segment: str = "",
    include_without_consent: bool = False,
) -> ExportResult:
    """Write `members` (rows of `segment_members`) to CSV file `path`.

    Parameters
    ----------
    members
        The members, with the feature fields.
    layout
        ``csv``, ``klaviyo`` or ``mailchimp``.
    segment
        The segment's name, for the tag or property naming it.
    include_without_consent
        Also write customers without marketing consent to a marketing layout.

    Raises
    ------
    InputError
        For an unknown layout.
    """
    if layout not in LAYOUTS:
        raise InputError(
            f"unknown export layout '{layout}'.",
            hint=f"Choose one of: {', '.join(LAYOUTS)}.",
        )
    marketing, columns = LAYOUTS[layout]
    rows = members.to_pylist()
    without_consent = without_email = 0
    if marketing:
        kept = []
        for r in rows:
            if not r.get("email"):
                without_email += 1
            elif r.get("accepts_marketing") is not True and not include_without_consent:
                without_consent += 1
            else:
                kept.append(r)
        rows = kept
    if not columns:
        columns = [(name, name) for name in members.column_names]
    rows.sort(key=lambda r: r.get("customer_id") or "")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([header for header, _ in columns])
        for r in rows:
            out = []
            for _, name in columns:
                if name is None:
                    out.append(segment)
                elif name == "phone" and marketing:
                    phone = r.get("phone") or ""
                    out.append(phone if phone.startswith("+") else "")
                else:
                    out.append(_cell(r.get(name)))
            writer.writerow(out)
    return ExportResult(path, layout, len(rows), without_consent, without_email)
