"""``truncation=True`` against the reference with the same truncation: the HF tokenizer's
``truncation=True, max_length=512`` (``<s>``, the first 510 pieces, ``</s>``) fed to torch.

Embeddings, PLL and fill-mask of texts over the tiny model's 512 positions; the ids themselves
are compared too, so a cut that drops ``</s>`` fails here whatever its effect on the numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parity import FP32_HIDDEN_TOL, FP32_LOG_PROB_TOL, assert_same
from xlm_onnx import Embedder, FillMask, Model, Scorer

LIMIT = 512
LONG = [" ".join(["Toute personne a droit à la liberté de pensée."] * 70),  # ~700 pieces
        "Alle Menschen sind frei und gleich an Würde und Rechten geboren. " * 50]


@pytest.fixture(scope="module")
def reference(tiny_checkpoint):
    from transformers import XLMTokenizer, XLMWithLMHeadModel

    return XLMWithLMHeadModel.from_pretrained(tiny_checkpoint).eval(), XLMTokenizer.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="module")
def model(fp32_dir):
    return Model.load(fp32_dir)


def hf_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, truncation=True, max_length=LIMIT)["input_ids"]
    assert len(ids) == LIMIT and ids[-1] == tokenizer.sep_token_id  # the reference did cut, keeping </s>
    return ids


def test_truncated_ids_are_the_hf_tokenizers(model, reference):
    _, tokenizer = reference
    for text in LONG:
        assert len(model.tokenizer.encode(text)) > LIMIT
        assert model.encode([text], truncation=True)[0] == hf_ids(tokenizer, text)


def test_truncated_embeddings_match_torch(model, reference):
    lm, tokenizer = reference
    got = Embedder(model).embed(LONG, truncation=True)
    for text, ours in zip(LONG, got):
        with torch.no_grad():
            hidden = lm.transformer(torch.tensor([hf_ids(tokenizer, text)])).last_hidden_state[0]
        np.testing.assert_allclose(ours, hidden.mean(0).numpy(), rtol=0, atol=FP32_HIDDEN_TOL)


def torch_pll(lm, ids: list[int], mask_id: int, chunk: int = 16) -> np.ndarray:
    """log p(token j | the others) for every j but <s> and </s>, one masked copy per j."""
    out = []
    for start in range(1, len(ids) - 1, chunk):
        positions = list(range(start, min(start + chunk, len(ids) - 1)))
        copies = torch.tensor([ids] * len(positions))
        rows = torch.arange(len(positions))
        copies[rows, positions] = mask_id
        with torch.no_grad():
            logits = lm(copies).logits[rows, positions]
        out += torch.log_softmax(logits, -1)[rows, [ids[p] for p in positions]].tolist()
    return np.array(out)


def test_truncated_pll_matches_torch(model, reference):
    lm, tokenizer = reference
    got = Scorer(model).score(LONG[:1], truncation=True, per_token=True)[0]
    ids = hf_ids(tokenizer, LONG[0])
    assert list(got.token_ids) == ids[1:-1]
    np.testing.assert_allclose(got.token_log_probs, torch_pll(lm, ids, tokenizer.mask_token_id),
                               rtol=0, atol=FP32_LOG_PROB_TOL)


def test_truncated_fill_mask_with_the_mask_last_matches_hf(model, hf_pipeline):
    """The mask at the last position the cut keeps: its right neighbour is </s>, or a word if the
    cut lost it."""
    fm = FillMask(model)
    word = next(w for w in ("a", "la", "de", "und") if len(fm.tokenizer.encode(w, add_special_tokens=False)) == 1)
    text = f"{word} " * (LIMIT - 3) + "<special1> " + f"{word} " * 100
    assert fm.tokenizer.encode(text).index(fm.tokenizer.mask_token_id) == LIMIT - 2
    ref = hf_pipeline(text, top_k=5, tokenizer_kwargs={"truncation": True, "max_length": LIMIT})
    assert_same(fm(text, top_k=5, truncation=True), ref, where="mask last kept")
