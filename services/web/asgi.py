"""ASGI entry for process managers and multi-worker uvicorn: ``services.web.asgi:app``."""

from services.settings import get_settings
from services.web.app import create_app

app = create_app(get_settings())
