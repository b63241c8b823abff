"""A task registered outside the package gets its own HTTP route, checked against its parameter
schema, with nothing in ``xlm_onnx/serve`` naming it (tests/test_front_ends.py checks that): the
toy task of ``tests/toy_tasks.py``, found by a server process through an installed entry point."""

from __future__ import annotations

import numpy as np
import pytest
from serve_util import require_serve_extra

require_serve_extra()

import httpx  # noqa: E402
from toy_tasks import HiddenMean, pythonpath, write_distribution  # noqa: E402

from xlm_onnx import Model  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402

TEXTS = ["Bonjour le monde.", "Toute personne a droit à la vie.", "x"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    site = pythonpath(write_distribution(tmp_path_factory.mktemp("site"), HiddenMean))
    with ServerProcess(None, env={"PYTHONPATH": site}) as proc:
        with httpx.Client(base_url=proc.url, timeout=60) as http:
            yield http


def test_its_route_answers_as_the_python_api(client):
    model = Model.load(None)
    answer = client.post("/hidden-mean", json={"inputs": TEXTS})
    assert answer.status_code == 200 and answer.json() == HiddenMean(model)(TEXTS)
    one = client.post("/hidden-mean", json={"inputs": TEXTS[0], "parameters": {"truncation": True}})
    assert one.status_code == 200 and one.json() == HiddenMean(model)(TEXTS[0], truncation=True)
    assert np.isfinite(one.json())


@pytest.mark.parametrize("body,message", [
    ({"inputs": "x", "truncate": True},
     "/hidden-mean: unknown field 'truncate'; did you mean 'truncation'?; known: inputs, lang, truncation"),
    ({"inputs": "x", "truncation": "yes"}, "truncation must be a bool, not str"),
    ({"truncation": True}, "/hidden-mean: 'inputs' is required"),
])
def test_a_wrong_field_is_a_422_naming_it(client, body, message):
    response = client.post("/hidden-mean", json=body)
    assert response.status_code == 422
    assert response.json() == {"error": message, "error_type": "Validation"}


def test_it_is_described(client):
    doc = client.get("/openapi.json").json()
    schema = doc["paths"]["/hidden-mean"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"inputs", "lang", "truncation", "parameters"}
    assert "hidden-mean" in doc["paths"]["/tasks/{task}"]["post"]["parameters"][0]["schema"]["enum"]

