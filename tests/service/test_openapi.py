"""The OpenAPI document is valid, says what the server does (security per configuration, the
options' rules, every $ref resolvable), and a bounded schemathesis run against `cutout serve`
finds no answer that contradicts it. A field given twice with different values is refused."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError
from starlette.testclient import TestClient

from service.config import Settings
from service.main import create_app
from service.pipeline import CutoutOptions
from support.cli import cutout_serve
from support.service import REPO_ROOT, disc_image, encoded

MODELS = REPO_ROOT / "models"
KEY = "test-key-1"


def spec_for(**settings) -> dict:
    return create_app(Settings(model_dir=MODELS, **settings)).openapi()


def secured(spec: dict) -> set[str]:
    return {f"{method.upper()} {path}" for path, operations in spec["paths"].items()
            for method, operation in operations.items() if operation.get("security")}


def resolve(spec: dict, ref: str) -> dict:
    node = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


@pytest.mark.parametrize("settings", [{}, {"api_keys": KEY},
                                      {"api_keys": KEY, "metrics_require_key": True}])
def test_the_document_validates_and_every_ref_resolves(settings):
    spec = spec_for(**settings)
    validate(spec)
    assert refs(spec)  # there are references, and each one leads somewhere from the root
    for ref in refs(spec):
        assert ref.startswith("#/components/"), ref
        assert isinstance(resolve(spec, ref), dict)
    removebg_json = spec["paths"]["/v1.0/removebg"]["post"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    assert "$defs" not in str(spec["paths"])
    assert resolve(spec, refs(removebg_json)[0])["title"] == "RemoveBgResult"


def test_security_is_declared_where_this_configuration_asks_for_a_key():
    image_routes = {"POST /v1/cutout", "POST /v1.0/removebg"}
    off = spec_for()
    assert secured(off) == set() and "securitySchemes" not in off["components"]
    assert image_routes <= secured(spec_for(api_keys=KEY)) and \
        "GET /metrics" not in secured(spec_for(api_keys=KEY))
    assert {"GET /metrics"} | image_routes <= secured(
        spec_for(api_keys=KEY, metrics_require_key=True))
    assert "GET /healthz" not in secured(spec_for(api_keys=KEY, metrics_require_key=True))


@pytest.mark.parametrize(("settings", "metrics_open"), [
    ({"api_keys": KEY}, True), ({"api_keys": KEY, "metrics_require_key": True}, False)])
def test_the_server_asks_for_keys_where_the_document_says(settings, metrics_open):
    app = create_app(Settings(model_dir=MODELS, **settings))  # no lifespan: the key check
    spec = app.openapi()                                         # answers before any worker
    client = TestClient(app)
    assert client.post("/v1/cutout", content=b"x").status_code == 401
    assert client.get("/metrics").status_code == (200 if metrics_open else 401)
    assert ("GET /metrics" in secured(spec)) is not metrics_open


def test_the_cutout_options_are_declared_as_the_server_checks_them():
    operation = spec_for()["paths"]["/v1/cutout"]["post"]
    query = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    files = {"bg_image"}  # options that are file parts, not text
    assert set(query) == set(CutoutOptions.model_fields) - files  # every option, nothing else
    assert form["required"] == ["image"] and form["additionalProperties"] is False
    assert set(form["properties"]) == set(CutoutOptions.model_fields) | {"image"}

    pattern = re.compile(query["crop_margin"]["pattern"])
    for margin in ("0", "30px", "10%", "2.5%", "10px 5%", "1,2,3,4", " 5px 1% 2px 0 "):
        assert pattern.search(margin), margin
        CutoutOptions(crop_margin=margin)
    for margin in ("", "ten", "5 px", "1 2 3", "1 2 3 4 5", "-5px", "10em"):
        assert not pattern.search(margin), margin
        with pytest.raises(ValidationError):
            CutoutOptions(crop_margin=margin)

    bounds = query["max_megapixels"]
    assert (bounds["exclusiveMinimum"], bounds["maximum"]) == (0, 1000)
    CutoutOptions(max_megapixels=1000)
    for outside in (0, 1000.5):
        with pytest.raises(ValidationError):
            CutoutOptions(max_megapixels=outside)


def test_unknown_cutout_fields_are_refused_as_declared():
    client = TestClient(create_app(Settings(model_dir=MODELS)))
    answer = client.post("/v1/cutout?colour=red", content=encoded(disc_image(32, 32)))
    assert answer.status_code == 422 and "colour" in answer.json()["error"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with cutout_serve(tmp_path_factory.mktemp("anywhere"), "--threads", "2",
                      "--max-inference-side", "256", "--log-level", "warning") as url:
        yield url


def test_a_query_parameter_and_a_field_that_disagree_are_refused(server):
    photo = encoded(disc_image(96, 64))
    with httpx.Client(base_url=server, timeout=60) as client:
        clash = client.post("/v1/cutout?format=png", files={"image": photo},
                            data={"format": "webp"})
        assert clash.status_code == 422
        assert "format" in clash.json()["error"] and "'png'" in clash.json()["error"]
        agree = client.post("/v1/cutout?format=webp", files={"image": photo},
                            data={"format": "webp"})
        assert agree.status_code == 200 and agree.headers["content-type"] == "image/webp"
        twice = client.post("/v1/cutout?crop=true&crop=false", content=photo)
        assert twice.status_code == 422
        removebg = client.post("/v1.0/removebg?size=preview", files={"image_file": photo},
                               data={"size": "full"})
        assert removebg.status_code == 400  # remove.bg's status for invalid options
        error = removebg.json()["errors"][0]
        assert error["code"] == "invalid_options" and "size" in error["title"]


@pytest.mark.slow
def test_schemathesis_finds_no_answer_that_contradicts_the_document(server, tmp_path):
    """Bounded: 10 examples per operation and phase, a fixed seed. Not run: the check that
    every schema-valid request is accepted, since validity also depends on what the schema
    cannot say (the bytes must decode as an image; some options exclude each other)."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server}/openapi.json",
         "--max-examples", "10", "--seed", "1", "--generation-database", "none",
         "--exclude-checks", "positive_data_acceptance", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-6000:]
    operations = sum(len(ops) for ops in httpx.get(f"{server}/openapi.json").json()["paths"]
                     .values())
    assert re.search(rf"Tested: {operations}\b", result.stdout), result.stdout[-2000:]
