"""`ser-infer serve`'s /openapi.json checked by a real validator (openapi-spec-validator), in the
same fresh venv as the package's tests (tests/python.sh installs it)."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

from openapi_spec_validator import validate

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SER_BIN", REPO / "target" / "release"))


def test_the_service_openapi_document_is_valid():
    serve = subprocess.Popen([BIN / "ser-infer", "-q", "serve", "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    try:
        url = serve.stdout.readline().strip()
        assert url.startswith("http://"), url
        doc = json.load(urllib.request.urlopen(url + "/openapi.json"))
        validate(doc)  # raises on any departure from the OpenAPI 3.1 schema
        assert doc["openapi"].startswith("3.1")
        assert {"/v1/predict", "/v1/timeline", "/v1/stream", "/v1/model"} <= set(doc["paths"])
    finally:
        serve.terminate()
        serve.wait(timeout=30)
