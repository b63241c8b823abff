"""Differential tests: Embedder against transformers' XLMModel + the same pooling (torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import UDHR
from parity import FP32_HIDDEN_TOL
from xlm_onnx import Embedder, InputError, Model, ModelFormatError
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

#: Cosine to torch fp32, per precision: the exporter's gates (xlm_onnx.golden.GATES). Measured on
#: these texts (tiny checkpoint): min 0.9999999 fp32, 0.9999995 fp16, 0.99984 int8.
MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999, "int8": 0.99}


def _texts() -> list[str]:
    """One short UDHR dev line per language (every script present), plus sample sentences."""
    texts = list(SAMPLE_TEXTS[:10]) + ["", "x"]
    if UDHR.is_file():
        seen = set()
        with open(UDHR, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                if row["lang"] not in seen and len(row["text"]) <= 160:
                    seen.add(row["lang"])
                    texts.append(row["text"])
    return texts


TEXTS = _texts()


def _torch_embeddings(checkpoint, texts, tokenizer, pooling="mean", lang_id=None) -> np.ndarray:
    from transformers import XLMModel

    model = XLMModel.from_pretrained(checkpoint).eval()
    out = []
    for text in texts:  # one at a time: no padding on the reference side
        ids = torch.tensor([tokenizer.encode(text)[:512]])
        kwargs = {} if lang_id is None else {"langs": torch.full_like(ids, lang_id)}
        with torch.no_grad():
            hidden = model(ids, **kwargs).last_hidden_state[0]
        out.append((hidden.mean(0) if pooling == "mean" else hidden[0]).numpy())
    return np.array(out)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def torch_embeddings(tiny_checkpoint, fp32_dir) -> dict:
    tokenizer = Model.load(fp32_dir).tokenizer
    return {p: _torch_embeddings(tiny_checkpoint, TEXTS, tokenizer, p) for p in ("mean", "cls")}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_embeddings_match_torch(request, precision, torch_embeddings):
    embedder = Embedder.from_pretrained(request.getfixturevalue(f"{precision}_dir"))
    got = embedder.embed(TEXTS, batch_size=7, truncation=True)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 64)
    for pooling in ("mean", "cls"):
        ref = torch_embeddings[pooling]
        ours = got if pooling == "mean" else embedder.embed(TEXTS, pooling="cls", truncation=True)
        cos = _cosines(ours, ref)
        print(f"{precision} {pooling}: {len(TEXTS)} texts, min cosine {cos.min():.8f}")
        assert cos.min() >= MIN_COSINE[precision], (pooling, TEXTS[int(cos.argmin())])
    if precision == "fp32":  # exact, not just aligned
        print(f"fp32 mean: max |delta| {np.abs(got - torch_embeddings['mean']).max():.2e}")
        np.testing.assert_allclose(got, torch_embeddings["mean"], rtol=0, atol=FP32_HIDDEN_TOL)


def test_lang_embeddings_match_torch(lang_dir, tiny_lang_checkpoint):
    embedder = Embedder.from_pretrained(lang_dir)
    texts = TEXTS[:15]
    by_lang = {}
    for lang, lang_id in [(None, None), ("en", 0), ("fr", 1), ("de", 2)]:
        ref = _torch_embeddings(tiny_lang_checkpoint, texts, embedder.model.tokenizer, lang_id=lang_id)
        by_lang[lang] = embedder.embed(texts, lang=lang, batch_size=4)
        print(f"lang {lang}: max |delta| {np.abs(by_lang[lang] - ref).max():.2e}")
        np.testing.assert_allclose(by_lang[lang], ref, rtol=0, atol=FP32_HIDDEN_TOL)
    assert not np.allclose(by_lang["en"], by_lang["fr"]), "the langs input has no effect"


def test_batching_order_and_normalize(fp32_dir):
    embedder = Embedder.from_pretrained(fp32_dir)
    single = np.array([embedder.embed(t) for t in TEXTS[:12]])
    assert single.shape == (12, 64)
    for batch_size, max_tokens in [(1, None), (3, 40), (32, None)]:
        got = embedder.embed(TEXTS[:12], batch_size=batch_size, max_tokens=max_tokens)
        print(f"batch {batch_size}/{max_tokens}: max |delta| {np.abs(got - single).max():.2e}")
        np.testing.assert_allclose(got, single, rtol=0, atol=FP32_HIDDEN_TOL)  # padding changes nothing
    unit = embedder.embed(TEXTS[:12], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(unit, single / np.linalg.norm(single, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_bad_input_is_refused(fp32_dir):
    embedder = Embedder(Model.load(fp32_dir))
    with pytest.raises(InputError, match="empty"):
        embedder.embed([])
    with pytest.raises(TypeError, match=r"inputs\[1\]"):
        embedder.embed(["ok", 3])
    with pytest.raises(ValueError, match="pooling"):
        embedder.embed("ok", pooling="max")
    with pytest.raises(ValueError, match="batch_size"):
        embedder.embed("ok", batch_size=0)
    with pytest.raises(InputError, match="no language embeddings"):
        embedder.embed("ok", lang="fr")
    with pytest.raises(InputError, match="at most 512"):
        embedder.embed("a " * 600)
    assert embedder.embed("a " * 600, truncation=True).shape == (64,)


def test_v1_directory_says_reexport(v1_dir):
    with pytest.raises(ModelFormatError, match="re-export"):
        Embedder.from_pretrained(v1_dir)
