"""``/api/docs``: the Swagger UI of the API, served from this app, so it works offline and under
the app's own Content-Security-Policy (``script-src 'self'``, no inline script).

FastAPI's default page loads Swagger UI from a CDN and starts it with an inline script, both of
which the CSP blocks (the page stayed blank). Here the assets come from the packaged
distribution ``fastapi-standalone-docs`` (its Swagger UI 5 files, which read OpenAPI 3.1 as
FastAPI writes it; mounted at ``/api/docs/assets``) and the start-up code is a static file of our
own (``/static/api-docs.js``): that package's own page starts Swagger UI inline, which the CSP
would block.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_standalone_docs
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/api/docs/assets"
SWAGGER_DIR = Path(fastapi_standalone_docs.__file__).resolve().parent / "static" / "swagger"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>living-review API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/api/openapi.json"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Mount the packaged Swagger UI assets and the ``/api/docs`` page on ``app``."""
    app.mount(
        ASSETS, StaticFiles(directory=SWAGGER_DIR), name="api-docs-assets"
    )

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(PAGE)
