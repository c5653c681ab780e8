"""The OpenAPI document, made true for this server: what FastAPI generates, with

- nested `$defs` (pydantic's, in schemas given inline to `responses=`) moved to
  `components/schemas`, so every `$ref` resolves from the document's root;
- security declared only where this configuration asks for a key: nowhere while API keys are
  off (the default), and on `/metrics` only with `metrics_require_key`.

Built once per app, on the first request for /openapi.json (or /docs).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from .deps import require_api_key, require_metrics_key

DEFS_PREFIX = "#/$defs/"
COMPONENTS_PREFIX = "#/components/schemas/"


def install(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """`routers`: those included in the app (their routes say which dependencies ask for keys)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
            hoist_defs(spec)
            declare_security(spec, app, [route for router in routers for route in router.routes
                                         if isinstance(route, APIRoute)])
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def hoist_defs(spec: dict[str, Any]) -> None:
    """Move every nested `$defs` entry to components/schemas and point its refs there."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for name, schema in node.pop("$defs", {}).items():
                if schemas.setdefault(name, schema) != schema:
                    raise ValueError(f"two different schemas are both named {name!r}")
                visit(schema)
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
                node["$ref"] = COMPONENTS_PREFIX + ref.removeprefix(DEFS_PREFIX)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(spec["paths"])
    visit(schemas)


def _key_rule(route: APIRoute) -> str | None:
    """'always' (a key whenever keys are on), 'metrics' (only with metrics_require_key)."""
    calls = {depends.dependency for depends in route.dependencies}
    if require_api_key in calls:
        return "always"
    if require_metrics_key in calls:
        return "metrics"
    return None


def declare_security(spec: dict[str, Any], app: FastAPI, routes: Sequence[APIRoute]) -> None:
    keys_on = app.state.api_keys.enabled
    metrics_key = keys_on and app.state.settings.metrics_require_key
    needs_key: dict[tuple[str, str], bool] = {}
    for route in routes:
        rule = _key_rule(route)
        for method in route.methods or ():
            needs_key[(route.path, method.lower())] = keys_on and (
                rule == "always" or (rule == "metrics" and metrics_key))
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not needs_key.get((path, method), False):
                operation.pop("security", None)
    if not keys_on:
        spec.get("components", {}).pop("securitySchemes", None)
