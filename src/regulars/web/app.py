"""FastAPI app: the endpoints that links in messages point to.

- ``GET /u/{token}``: a page that confirms the unsubscribe with one button;
- ``POST /u/{token}``: unsubscribe. Mail clients call it themselves for
  RFC 8058 one-click unsubscribe (body ``List-Unsubscribe=One-Click``);
- ``GET /r/{token}/{rating}``: record a 1-5 rating from a feedback request;
- ``GET /health``: JSON: the outbox by status, and the flows schedule when
  `regulars serve` runs one.

Tokens are signed (`regulars.campaigns.links`); a forged or altered one gets
404 and changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from regulars.campaigns.links import read_token
from regulars.state.models import Rating, Send, Unsubscribe
from regulars.state.store import StateStore, email_sha256, open_state

if TYPE_CHECKING:
    from regulars.web.scheduler import FlowScheduler

__all__ = ["create_app"]

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.5rem 1rem}}</style></head><body><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body))


def create_app(
    state: StateStore | str, scheduler: FlowScheduler | None = None
) -> FastAPI:
    """The app over app state `state` (a `StateStore` or a SQLAlchemy URL);
    with `scheduler`, flows run on its schedule while the app is up."""
    store = open_state(state) if isinstance(state, str) else state

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.stop()

    app = FastAPI(title="Regulars", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        from regulars.campaigns.run import outbox_counts

        return {
            "status": "ok", "outbox": outbox_counts(store),
            "schedule": scheduler.status() if scheduler else None,
        }  # fmt: skip

    def _send(token: str, purpose: str) -> Send:
        send_id = read_token(store.signing_key(), token, purpose)
        if send_id is None:
            raise HTTPException(status_code=404, detail="This link is not valid.")
        with store.session() as s:
            row = s.get(Send, send_id)
        if row is None:
            raise HTTPException(status_code=404, detail="This link is no longer valid.")
        return row

    @app.get("/u/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        _send(token, "u")
        return _page(
            "Unsubscribe",
            f'<p>Stop marketing emails to this address?</p><form method="post" '
            f'action="/u/{html.escape(token)}"><button type="submit">Unsubscribe</button></form>',
        )

    @app.post("/u/{token}", response_class=HTMLResponse)
    async def unsubscribe(token: str, request: Request) -> HTMLResponse:
        row = _send(token, "u")
        body = (await request.body()).decode(errors="replace")
        via = "one-click" if "List-Unsubscribe=One-Click" in body else "link"
        if row.email:
            digest = email_sha256(row.email)
            with store.session() as s:
                known = s.scalars(
                    select(Unsubscribe.id).where(Unsubscribe.email_sha256 == digest)
                ).first()
                if known is None:
                    s.add(Unsubscribe(email_sha256=digest, customer_id=row.customer_id,
                                      at=_dt.datetime.now(_dt.UTC), via=via))  # fmt: skip
        return _page(
            "Unsubscribed", "<p>You will get no more marketing emails from us.</p>"
        )

    @app.get("/r/{token}/{rating}", response_class=HTMLResponse)
    def rate(token: str, rating: int) -> HTMLResponse:
        row = _send(token, "r")
        if not 1 <= rating <= 5:
            raise HTTPException(status_code=422, detail="A rating is 1 to 5.")
        with store.session() as s:
            s.add(Rating(send_id=row.id, customer_id=row.customer_id, rating=rating,
                         at=_dt.datetime.now(_dt.UTC)))  # fmt: skip
        return _page("Thank you", f"<p>You rated us {rating} out of 5.</p>")

    return app
