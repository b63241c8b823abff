"""Per-request work limits (xlm_onnx.limits) in the Python API: each task's ``prepare`` computes
the cost of a request from its tokens before any model run, and refuses what its limits do not
allow, naming the limit; without limits (the API's default) nothing is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xlm_onnx import Embedder, FillMask, LimitError, Model, RequestLimits, Scorer
from xlm_onnx.limits import Cost, enforce

LONG = " ".join(["Toute personne a droit à la liberté de pensée."] * 40)


@pytest.fixture(scope="module")
def tasks():
    model = Model.load(None)
    fill, embed, score = FillMask.from_model(model), Embedder(model), Scorer(model)
    return model, fill, embed, score


@pytest.fixture()
def limited(tasks):
    model, *objects = tasks
    for task in objects:
        task.request_limits = RequestLimits()
    yield tasks
    for task in objects:
        task.request_limits = None


def _refused(call, limit: str) -> LimitError:
    with pytest.raises(LimitError) as info:
        call()
    assert info.value.limit == limit and f"({limit})" in str(info.value)
    return info.value


def test_amplification_is_refused_before_any_run(limited):
    model, fill, embed, score = limited
    vocab = model.manifest.vocab_size
    masks = " ".join(["<mask>"] * 20)
    error = _refused(lambda: fill.prepare(masks, top_k=vocab), "max_predictions")
    assert error.value == 20 * vocab and error.allowed == 4096
    many = " ".join(["<mask>"] * 200)
    words = [f"mot{i}" for i in range(500)]
    _refused(lambda: fill.prepare(many, targets=words, whole_word_targets=True), "max_copies")
    # Cut to the demo model's 256 positions: 254 copies of 256 tokens per text.
    _refused(lambda: score.prepare([LONG] * 64, truncation=True), "max_copies")
    _refused(lambda: score.prepare([LONG] * 2, truncation=True), "max_request_tokens")  # 508 x 256 > 65,536
    fill.request_limits = RequestLimits(max_response_bytes=1 << 20)
    _refused(lambda: fill.prepare(["<mask> " + LONG] * 64, top_k=64, truncation=True), "max_response_bytes")


def test_normal_requests_pass_the_default_limits(limited):
    model, fill, embed, score = limited
    rows = embed.prepare([LONG] * 64, truncation=True).cost
    assert rows.tokens == 64 * model.manifest.max_positions  # the largest embed request of the server
    one = score.prepare(LONG, truncation=True).cost
    assert one.copies == model.manifest.max_positions - 2 and one.tokens <= 65_536
    assert fill.prepare(["Bonjour <mask> et <mask>."] * 64, top_k=10).cost.predictions == 64 * 2 * 10


def test_without_limits_nothing_is_refused(tasks):
    model, fill, embed, score = tasks
    masks = " ".join(["<mask>"] * 20)
    cost = fill.prepare(masks, top_k=model.manifest.vocab_size).cost  # prepared, not run
    assert cost.predictions == 20 * model.manifest.vocab_size


@pytest.mark.parametrize("case", [
    {"inputs": "Bonjour <mask>."},
    {"inputs": ["Toute personne a droit à la <mask>.", "<mask> et <mask> !"], "top_k": 7},
    {"inputs": "La <mask> est belle.", "targets": ["vie", "maison"]},
    {"inputs": ["«\u00a0Ελληνικά <mask> 日本語 👍\u00a0»"], "top_k": 3},
    {"inputs": ["La <mask> est belle.", "<mask> et <mask>"], "targets": ["vie", "liberté"], "whole_word_targets": True},
])
def test_response_estimate_covers_the_answer(tasks, case):
    """The estimate is an upper bound of the JSON answer, and not a wild one."""
    model, fill, _, _ = tasks
    estimate = fill.prepare(**case).cost.response_bytes
    actual = len(json.dumps(fill(**case), ensure_ascii=False).encode())
    assert actual <= estimate <= 4 * actual, (actual, estimate)


def test_embed_and_score_estimates_cover_the_answer(tasks):
    model, _, embed, score = tasks
    texts = ["Bonjour le monde.", "Toute personne a droit à la vie.", "x"]
    estimate = embed.prepare(texts).cost.response_bytes
    actual = len(json.dumps(embed.embed(texts).tolist()))
    assert actual <= estimate <= 4 * actual
    estimate = score.prepare(texts, per_token=True).cost.response_bytes
    import dataclasses

    actual = len(json.dumps([dataclasses.asdict(r) for r in score.score(texts, per_token=True)], ensure_ascii=False))
    assert actual <= estimate <= 4 * actual


def test_enforce_names_the_first_limit_over():
    limits = RequestLimits(max_request_tokens=100, max_copies=None, max_predictions=5, max_response_bytes=None)
    assert enforce(limits, Cost(rows=10, longest=10, copies=10 ** 6, predictions=5)).tokens == 100
    with pytest.raises(LimitError, match=r"asks for 110 padded tokens .* the limit is 100 \(max_request_tokens\)"):
        enforce(limits, Cost(rows=11, longest=10))
    assert enforce(None, Cost(rows=10 ** 9, longest=10 ** 9)).rows == 10 ** 9
    assert isinstance(LimitError("max_copies", 2, 1, "copies"), ValueError)  # InputError: except ValueError works


def test_answers_are_unchanged_by_limits(limited, tasks):
    model, fill, embed, score = limited
    texts = ["Bonjour le monde.", "Toute personne a droit à la vie."]
    got = embed.embed(texts)
    embed.request_limits = None
    np.testing.assert_array_equal(got, embed.embed(texts))
