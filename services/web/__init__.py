"""The reviewer web app (FastAPI): server-rendered pages plus a JSON API. See :mod:`.app`."""

from services.web.app import create_app

__all__ = ["create_app"]
