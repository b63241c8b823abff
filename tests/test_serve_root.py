"""``POST /`` as TEI and the HF Inference API serve it, driven by the real third-party clients:
``huggingface_hub.InferenceClient(model=<server URL>)`` (fill_mask, feature_extraction,
sentence_similarity) and ``openai.OpenAI(base_url=<server URL>/v1)`` (embeddings.create), on real
server processes on loopback ports. Every answer equals the Python API's on the same input; an
error reaches the client as the API's message in the HTTP field names it sent.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest

from serve_util import require_serve_extra

require_serve_extra()

huggingface_hub = pytest.importorskip("huggingface_hub")  # the [test] extra brings both clients
openai = pytest.importorskip("openai")

import httpx  # noqa: E402

from xlm_onnx import Embedder, FillMask, Model, Scorer  # noqa: E402
from xlm_onnx.errors import HTTPError  # noqa: E402
from xlm_onnx.serve import task_routes  # noqa: E402
from xlm_onnx.serve import adapters  # noqa: E402
from xlm_onnx.serve.adapters import tei  # noqa: E402
from xlm_onnx.serve.body import BodyLimits  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402

KEY = "root-key"
TEXTS = ["Bonjour le monde.", "Toute personne a droit à la vie.", "Das ist ein Haus."]
LONG = " ".join(["Toute personne a droit à la liberté de pensée."] * 40)  # > the demo's 256 positions


@pytest.fixture(scope="module")
def api():
    model = Model.load(None)
    return {"fill": FillMask.from_model(model), "embed": Embedder(model), "score": Scorer(model)}


@pytest.fixture(scope="module")
def fill_server():
    """The default root task (fill-mask), with an API key."""
    with ServerProcess(None, env={"XLM_ONNX_API_KEY": KEY}) as server:
        yield server


@pytest.fixture(scope="module")
def embed_server():
    with ServerProcess(None, ["--task", "embed"]) as server:
        yield server


def _fields(predictions) -> list[tuple]:
    return [(p.token, p.token_str, p.sequence, p.score) for p in predictions]


def test_inference_client_fill_mask_on_the_root_url(fill_server, api):
    client = huggingface_hub.InferenceClient(model=fill_server.url, token=KEY, timeout=60)
    text = "Toute personne a droit à la <mask>."
    got = client.fill_mask(text, top_k=3)
    expected = api["fill"](text, top_k=3)
    assert _fields(got) == [(e["token"], e["token_str"], e["sequence"], e["score"]) for e in expected]
    targeted = client.fill_mask(text, targets=["vie", "liberté"])
    assert [p.token_str for p in targeted] == [e["token_str"] for e in api["fill"](text, targets=["vie", "liberté"])]
    assert httpx.get(fill_server.url + "/info", headers={"Authorization": f"Bearer {KEY}"}).json()["root_task"] \
        == "fill-mask"


def test_inference_client_sees_the_api_message_and_the_status(fill_server, api):
    client = huggingface_hub.InferenceClient(model=fill_server.url, token=KEY, timeout=60)
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        client.fill_mask("no mask here")
    assert info.value.response.status_code == 422
    try:
        api["fill"]("no mask here")
    except ValueError as exc:
        assert str(exc) in str(info.value)
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        huggingface_hub.InferenceClient(model=fill_server.url, token="wrong", timeout=60).fill_mask("a <mask>")
    assert info.value.response.status_code == 401


def test_inference_client_feature_extraction_and_similarity(embed_server, api):
    client = huggingface_hub.InferenceClient(model=embed_server.url, timeout=60)
    got = client.feature_extraction("Bonjour le monde.")  # TEI: normalize defaults to true
    np.testing.assert_array_equal(got, api["embed"].embed(["Bonjour le monde."], normalize=True))
    raw = client.feature_extraction(TEXTS[1], normalize=False)
    np.testing.assert_array_equal(raw, api["embed"].embed(TEXTS[1:2]))
    cut = client.feature_extraction(LONG, truncate=True)
    np.testing.assert_array_equal(cut, api["embed"].embed([LONG], normalize=True, truncation=True))
    cosines = client.sentence_similarity(TEXTS[0], other_sentences=TEXTS[1:])
    vectors = api["embed"].embed(TEXTS, normalize=True).astype(np.float64)
    np.testing.assert_allclose(cosines, vectors[1:] @ vectors[0], rtol=0, atol=1e-12)
    assert httpx.post(embed_server.url + "/similarity", json={"inputs": {"source_sentence": TEXTS[0],
                                                                        "sentences": TEXTS[1:]}}).json() == cosines


def test_inference_client_too_long_names_the_field_it_sent(embed_server):
    client = huggingface_hub.InferenceClient(model=embed_server.url, timeout=60)
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        client.feature_extraction(LONG)
    assert info.value.response.status_code == 422
    message = info.value.response.json()["error"]
    assert message.startswith("inputs[0] is ") and 'send "truncate": true' in message
    assert "truncation=True" not in message


@pytest.mark.parametrize("encoding", [None, "float", "base64"])
def test_openai_client_embeddings(fill_server, api, encoding):
    client = openai.OpenAI(base_url=fill_server.url + "/v1", api_key=KEY, timeout=60, max_retries=0)
    extra = {} if encoding is None else {"encoding_format": encoding}  # None: the client's default (base64)
    answer = client.embeddings.create(input=TEXTS, model="xlm", **extra)
    # Asked for base64 explicitly, the client hands the strings over as they came.
    rows = [np.frombuffer(base64.b64decode(d.embedding), "<f4") if isinstance(d.embedding, str) else d.embedding
            for d in answer.data]
    np.testing.assert_array_equal(np.array(rows, np.float32),
                                  api["embed"].embed(TEXTS, normalize=True))
    tokens = sum(len(ids) for ids in api["embed"].model.encode(TEXTS))
    assert answer.usage.prompt_tokens == tokens and answer.model == "default_model"


def test_openai_client_errors(fill_server):
    client = openai.OpenAI(base_url=fill_server.url + "/v1", api_key=KEY, timeout=60, max_retries=0)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.embeddings.create(input=[], model="xlm")
    assert info.value.status_code == 422 and info.value.body["message"] == "input is an empty list"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=fill_server.url + "/v1", api_key="wrong", max_retries=0).embeddings.create(
            input="x", model="xlm")


def test_root_payloads_map_to_the_task_routes():
    """Both HF shapes (``parameters`` object, flat fields) give the task route's own arguments."""
    from types import SimpleNamespace

    state = SimpleNamespace(settings=SimpleNamespace(limits=BodyLimits()), tasks=SimpleNamespace(defaults={}))

    def score(body):
        return task_routes.arguments("score", body, "POST / (score)", state)

    assert score({"inputs": "x", "parameters": {"metric": "word_l2r"}}) == score({"inputs": "x", "metric": "word_l2r"})
    assert score({"inputs": ["a", "b"], "per_token": True})["per_token"] is True

    def embed(body):
        return tei.embed_arguments(body, "POST / (embed)", state)

    assert embed({"inputs": "x", "parameters": {"normalize": False}}) == embed({"inputs": "x", "normalize": False})
    with pytest.raises(HTTPError, match=r"POST / \(embed\): unknown field 'bogus'"):
        embed({"inputs": "x", "bogus": 1})
    with pytest.raises(HTTPError, match="given both flat and in parameters"):
        score({"inputs": "x", "metric": "original", "parameters": {"metric": "word_l2r"}})
    assert adapters.default_root_task(["embed", "score"]) == "embed"
    assert adapters.default_root_task(["fill-mask", "embed"]) == "fill-mask"


def test_root_refuses_base64_on_tei_root(embed_server):
    response = httpx.post(embed_server.url + "/", json={"inputs": "x", "encoding_format": "base64"})
    assert response.status_code == 422 and "encoding_format must be 'float'" in response.json()["error"]


def test_another_tasks_payload_says_where_to_post_it(fill_server, embed_server):
    """The HF clients' other tasks against a root of another task: the root's task and the route to use."""
    fill = huggingface_hub.InferenceClient(model=fill_server.url, token=KEY, timeout=60)
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        fill.feature_extraction("Bonjour le monde.")
    message = info.value.response.json()["error"]
    assert info.value.response.status_code == 422 and message.startswith("inputs[0] has no mask token")
    assert "POST / on this server answers fill-mask (xlm-onnx serve --task)" in message and "/embed" in message
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        fill.sentence_similarity("Bonjour", other_sentences=["Salut"])
    assert info.value.response.json()["error"] == (
        "this is a sentence-similarity request, and POST / on this server answers fill-mask "
        "(xlm-onnx serve --task): post it to /similarity")
    scoring = httpx.post(fill_server.url + "/", json={"inputs": "x", "metric": "word_l2r"},
                         headers={"Authorization": f"Bearer {KEY}"}).json()["error"]
    assert scoring.endswith("POST / on this server answers fill-mask (xlm-onnx serve --task); this body fits /score")
    tei_body = httpx.post(fill_server.url + "/", json={"inputs": "x", "truncate": True},
                          headers={"Authorization": f"Bearer {KEY}"}).json()["error"]
    assert tei_body.startswith("POST / (fill-mask): unknown field 'truncate'") and tei_body.endswith(
        "POST / on this server answers fill-mask (xlm-onnx serve --task); this body fits /embed")
    embed = huggingface_hub.InferenceClient(model=embed_server.url, timeout=60)
    with pytest.raises(huggingface_hub.errors.HfHubHTTPError) as info:
        embed.fill_mask("Toute personne a droit à la <mask>.")
    assert info.value.response.json()["error"] == (
        "this is a fill-mask request, and POST / on this server answers embed (xlm-onnx serve --task): "
        "post it to /fill-mask")


def test_refusals_are_timed_inside_the_server(fill_server):
    """``xlm_onnx_refusal_seconds{status}`` observes every refusal (benchmarks/serve_load.py reads it)."""
    from serve_util import metric

    headers = {"Authorization": f"Bearer {KEY}"}
    name = 'xlm_onnx_refusal_seconds_count{status="401"}'
    before = metric(httpx.get(fill_server.url + "/metrics", headers=headers).text, name)
    assert httpx.post(fill_server.url + "/fill-mask", json={"inputs": "a <mask>"}).status_code == 401
    assert httpx.post(fill_server.url + "/", json={"inputs": "no mask"}, headers=headers).status_code == 422
    text = httpx.get(fill_server.url + "/metrics", headers=headers).text
    assert metric(text, name) == before + 1
    assert metric(text, 'xlm_onnx_refusal_seconds_count{status="422"}') >= 1
