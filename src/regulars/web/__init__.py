"""The web app (FastAPI): unsubscribe and rating links for now."""

from regulars.web.app import create_app

__all__ = ["create_app"]
