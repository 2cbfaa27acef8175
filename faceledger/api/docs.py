"""The API's documentation page (/docs) and the OpenAPI address."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline

# /docs: Swagger UI 5 (reads OpenAPI 3.1), as shipped in the fastapi-offline wheel (MIT; Swagger UI
# itself Apache-2.0). Served from the installed package under the same strict CSP as every page:
# no CDN, no inline script (static/docs.js starts it), no validator call-out.
SWAGGER_UI_DIR = str(Path(fastapi_offline.__file__).parent / "static")
OPENAPI_URL = "/api/v1/openapi.json"


def docs_html() -> str:
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>faceledger API</title>'
            '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
            '<link rel="stylesheet" href="/static/swagger/swagger-ui.css"></head>'
            f'<body><div id="swagger-ui" data-openapi-url="{OPENAPI_URL}"></div>'
            '<script src="/static/swagger/swagger-ui-bundle.js"></script>'
            '<script src="/static/docs.js"></script></body></html>\n')
