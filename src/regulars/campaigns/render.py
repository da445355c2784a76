"""Render a flow's message with Jinja2 (plain text).

Templates see: ``first_name``, ``last_name``, ``email``, ``flow``, ``step``,
``product`` (replenishment), ``order_id`` (order-based flows),
``last_products`` (names on the customer's last order), ``recommended``
(what buyers of those products most often buy next), ``coupon``,
``unsubscribe_url`` and ``rating_urls`` (1 to 5). A name the template uses
that is not here is an error, found when the flows file is loaded.
Marketing messages end with the unsubscribe link whether or not the
template shows it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jinja2

from regulars.errors import InputError

if TYPE_CHECKING:
    from regulars.campaigns.flows import Flow

__all__ = ["SAMPLE_CONTEXT", "render_message", "render_text"]

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False,
                          keep_trailing_newline=True)  # fmt: skip

#: A context with every name, for checking templates when a flows file loads.
SAMPLE_CONTEXT: dict[str, Any] = {
    "first_name": "Anna", "last_name": "Schmidt", "email": "anna@example.com",
    "flow": "sample", "step": 1, "product": "Coffee Beans 1kg", "order_id": "#1001",
    "last_products": ["Coffee Beans 1kg"], "recommended": ["Grinder"], "coupon": "WELCOME10",
    "unsubscribe_url": "https://example.com/u/token",
    "rating_urls": {n: f"https://example.com/r/token/{n}" for n in range(1, 6)},
}  # fmt: skip


@functools.lru_cache(maxsize=256)
def _template(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def render_text(text: str, context: dict[str, Any]) -> str:
    """Render one template.

    Raises
    ------
    InputError
        If the template uses a name the context lacks, or has a syntax error.
    """
    try:
        return _template(text).render(**context)
    except jinja2.UndefinedError as exc:
        raise InputError(
            f"template uses something messages do not have: {exc.message}.",
            hint="Names: " + ", ".join(sorted(SAMPLE_CONTEXT)) + ".",
        ) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(
            f"template error on line {exc.lineno}: {exc.message}."
        ) from exc


def render_message(
    flow: Flow, subject: str, body: str, context: dict[str, Any]
) -> tuple[str, str]:
    """The subject (one line) and body of a message of `flow`."""
    rendered_subject = " ".join(render_text(subject, context).split())
    text = render_text(body, context).rstrip() + "\n"
    if flow.marketing and context["unsubscribe_url"] not in text:
        text += f"\n--\nNo more of these emails: {context['unsubscribe_url']}\n"
    return rendered_subject, text
