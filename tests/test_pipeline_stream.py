"""A script written for ``transformers.pipeline`` runs on ``xlm_onnx.pipeline`` with only its import
changed: over a generator of 10,000 texts, reading at most ``batch_size`` texts ahead of the answers
it has given, with transformers' answers; and ``feature-extraction`` against transformers'.

The model directory holds both the checkpoint (for transformers) and its export (for xlm-onnx), so
the two runs of the script differ in nothing but the import line.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from parity import FP32_HIDDEN_TOL, assert_same

transformers = pytest.importorskip("transformers")

SCRIPT = '''
from transformers import pipeline

PLACES = ["Paris", "the city", "a village", "Europe", "the house", "our street", "this room"]


def texts(n):
    for i in range(n):
        yield f"Everyone in {PLACES[i % 7]} has the right to <special1> number {i}."


def main(model, n, results, batch_size=8):
    unmasker = pipeline("fill-mask", model=model, top_k=2)
    for answer in unmasker(texts(n), batch_size=batch_size):
        results.append(answer)
'''

N, COMPARED, BATCH = 10_000, 200, 8


@pytest.fixture(scope="module")
def both_dir(tmp_path_factory, tiny_checkpoint, fp32_dir):
    """The export with the checkpoint's files beside it: a directory both libraries load."""
    out = tmp_path_factory.mktemp("both") / "model"
    shutil.copytree(fp32_dir, out)
    for path in tiny_checkpoint.iterdir():
        if not (out / path.name).exists():
            shutil.copy(path, out / path.name)
    return out


def _run(library: str, model, n: int, results) -> dict:
    source = SCRIPT if library == "transformers" else SCRIPT.replace(
        "from transformers import pipeline", "from xlm_onnx import pipeline")
    assert source.count("\n") == SCRIPT.count("\n") and (source == SCRIPT) == (library == "transformers")
    namespace: dict = {}
    exec(compile(source, f"<script for {library}>", "exec"), namespace)
    return namespace


class Recorder(list):
    """The script's ``results``: notes, at each answer, how many texts had been read."""

    def __init__(self, read: list) -> None:
        super().__init__()
        self.read, self.ahead = read, []

    def append(self, answer) -> None:
        super().append(answer)
        self.ahead.append(self.read[0] - len(self))


def _counting(namespace: dict, read: list) -> None:
    texts = namespace["texts"]

    def counted(n):
        for text in texts(n):
            read[0] += 1
            yield text

    namespace["texts"] = counted


def test_script_for_transformers_runs_unchanged_on_10000_texts(both_dir):
    read = [0]
    ours = Recorder(read)
    namespace = _run("xlm_onnx", both_dir, N, ours)
    _counting(namespace, read)
    namespace["main"](str(both_dir), N, ours, BATCH)
    assert len(ours) == N == read[0]
    assert max(ours.ahead) <= BATCH - 1 and min(ours.ahead) >= 0  # never more than a batch read ahead
    ref: list = []
    _run("transformers", both_dir, COMPARED, ref)["main"](str(both_dir), COMPARED, ref, BATCH)
    for i, (a, b) in enumerate(zip(ours[:COMPARED], ref)):
        assert_same(a, b, where=f"text {i}")
    print(f"{N} texts, at most {max(ours.ahead)} read ahead of the answers; first {COMPARED} = transformers'")


def test_stream_stops_reading_when_the_caller_stops(fp32_dir):
    import xlm_onnx

    read = [0]

    def endless():
        while True:
            read[0] += 1
            yield "Hello <special1> !"

    answers = xlm_onnx.pipeline("fill-mask", model=str(fp32_dir))(endless(), batch_size=4)
    first = [next(answers) for _ in range(6)]
    assert len(first) == 6 and read[0] == 8  # two batches of 4, nothing more


def test_stream_raises_at_the_bad_input_after_the_answers_before_it(fp32_dir):
    import xlm_onnx

    fill = xlm_onnx.pipeline("fill-mask", model=str(fp32_dir))
    got = []
    with pytest.raises(xlm_onnx.InputError, match=r"inputs\[5\] has no mask") as caught:
        for answer in fill(iter([f"a <special1> {i}" for i in range(5)] + ["no mask"]), batch_size=4):
            got.append(answer)
    assert len(got) == 5 and caught.value.index == 5


@pytest.fixture(scope="module")
def features(tiny_checkpoint, fp32_dir):
    import xlm_onnx

    return (xlm_onnx.pipeline("feature-extraction", model=str(fp32_dir)),
            transformers.pipeline("feature-extraction", model=str(tiny_checkpoint), device="cpu"))


@pytest.mark.parametrize("kwargs", [{}, {"truncation": True},
                                    {"tokenize_kwargs": {"truncation": True, "max_length": 6}}])
def test_feature_extraction_matches_transformers(features, kwargs):
    ours, ref = features
    texts = ["All human beings are born free.", "Hello", "x " * 40]
    for text in texts:
        got, want = ours(text, **kwargs), ref(text, **kwargs)
        assert isinstance(got, list) and np.array(got).shape == np.array(want).shape  # [1, tokens, dim]
        np.testing.assert_allclose(np.array(got), np.array(want), atol=FP32_HIDDEN_TOL, rtol=0)
    got, want = ours(texts, **kwargs), ref(texts, **kwargs)
    assert len(got) == len(want) == 3
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=FP32_HIDDEN_TOL, rtol=0)
    tensor = ours(texts[0], return_tensors=True, **kwargs)
    assert isinstance(tensor, np.ndarray) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor, np.array(ref(texts[0], **kwargs)), atol=FP32_HIDDEN_TOL, rtol=0)
    streamed = list(ours(iter(texts), batch_size=2, **kwargs))
    for a, b in zip(streamed, got):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=FP32_HIDDEN_TOL, rtol=0)


def test_feature_extraction_batches_do_not_pad_answers(features):
    """A deliberate difference: transformers' rows of a batch come padded to its longest text;
    here each text's answer is its own tokens whatever the batch size (transformers' batch_size=1)."""
    ours, ref = features
    texts = ["Hello", "All human beings are born free."]
    padded = [np.array(a).shape for a in ref(texts, batch_size=2)]
    alone = [np.array(a).shape for a in ref(texts, batch_size=1)]
    assert padded[0] != alone[0] and padded[1] == alone[1]
    assert [np.array(a).shape for a in ours(texts, batch_size=2)] == alone
