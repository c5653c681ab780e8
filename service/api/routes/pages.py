"""What a browser opens: `/` (try the API on your own photos), `/docs` (Swagger UI) and `/redoc`,
with every script and stylesheet served from the installed packages: they work with no network.

The page is static HTML + one script that calls `/v1/cutout` like any client (service/web/); the
API routes do not change for it. Swagger UI and ReDoc come from the fastapi-offline package,
which ships their current bundles, through FastAPI's self-hosting recipe.
"""
from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PAGE_ASSETS_URL, DOCS_ASSETS_URL = "/static/page", "/static/docs"
# The page loads nothing from elsewhere; the browser holds it to that.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
               "object-src 'none'; base-uri 'none'; frame-ancestors 'self'")

router = APIRouter(include_in_schema=False)


def mount_assets(app: FastAPI) -> None:
    app.mount(PAGE_ASSETS_URL, StaticFiles(directory=WEB_DIR), name="page-assets")
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html",
                        headers={"Content-Security-Policy": PAGE_POLICY,
                                 "Cache-Control": "no-cache"})


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title="cutout - Swagger UI",
        swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None})  # no badge fetched from swagger.io


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}", title="cutout - ReDoc",
        redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png", with_google_fonts=False)
