"""Whole-word targets: each target scored as all its pieces in the masked slot (within-word
left-to-right PLL), differential against torch; single-piece targets equal HF's targets path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xlm_onnx import FillMask, InputError, ModelFormatError

TEXT = "Toute personne a droit à la <special1>."
#: Largest |Δ log score| per piece vs torch (fp32). Measured on the tiny checkpoint: 1.6e-5 for a
#: whole word (sums of log-probs near -50); a wrong position or label moves it by whole units.
TOLERANCE = 5e-5


def torch_word_score(model, tokenizer, text: str, word: str, mask: int = 0) -> float:
    """exp(Σ_j log p(piece_j | pieces ≥ j masked, pieces < j visible)) with the word in the slot of
    the text's ``mask``-th mask (the others stay masked)."""
    ids = tokenizer.encode(text)
    slot = [p for p, t in enumerate(ids) if t == tokenizer.mask_token_id][mask]
    pieces = tokenizer.encode(word, add_special_tokens=False)
    filled = ids[:slot] + pieces + ids[slot + 1:]
    total = 0.0
    for j, piece in enumerate(pieces):
        copy = list(filled)
        copy[slot + j: slot + len(pieces)] = [tokenizer.mask_token_id] * (len(pieces) - j)
        with torch.no_grad():
            logits = model(torch.tensor([copy])).logits[0, slot + j]
        total += torch.log_softmax(logits, -1)[piece].item()
    return float(np.exp(total))


@pytest.fixture(scope="module")
def reference(tiny_checkpoint):
    from transformers import XLMTokenizer, XLMWithLMHeadModel

    return XLMWithLMHeadModel.from_pretrained(tiny_checkpoint).eval(), XLMTokenizer.from_pretrained(tiny_checkpoint)


def test_matches_torch_and_ranks_words(fp32_dir, reference):
    fm = FillMask.from_pretrained(fp32_dir)
    words = ["liberté", "droit", "personne", "Menschenrechte", "a"]
    pieces = {w: fm.tokenizer.encode(w, add_special_tokens=False) for w in words}
    assert any(len(p) > 1 for p in pieces.values()) and any(len(p) == 1 for p in pieces.values())
    got = fm(TEXT, targets=words, top_k=len(words), whole_word_targets=True)
    want = {w: torch_word_score(*reference, TEXT, w) for w in words}
    assert [p["token_str"] for p in got] == sorted(words, key=lambda w: -want[w])
    for p in got:
        word = p["token_str"]
        assert p["token"] == pieces[word]
        assert abs(np.log(p["score"]) - np.log(want[word])) <= TOLERANCE * len(pieces[word])
        assert p["sequence"] == fm.tokenizer.decode(
            [i for i in fm.tokenizer.encode(TEXT.replace("<special1>", word))], skip_special_tokens=True)
    assert len(fm(TEXT, targets=words, top_k=2, whole_word_targets=True)) == 2


def test_single_piece_target_equals_hf_targets(fp32_dir, hf_pipeline):
    """One piece: the within-word PLL is the fill-mask probability itself (HF's targets path)."""
    fm = FillMask.from_pretrained(fp32_dir)
    word = next(w for w in ("la", "de", "a") if len(fm.tokenizer.encode(w, add_special_tokens=False)) == 1)
    token = fm.tokenizer.encode(word, add_special_tokens=False)[0]
    hf = {p["token"]: p["score"] for p in hf_pipeline(TEXT, top_k=hf_pipeline.tokenizer.vocab_size)}
    got = fm(TEXT, targets=[word], whole_word_targets=True)
    assert got[0]["token"] == [token]
    assert abs(np.log(got[0]["score"]) - np.log(hf[token])) <= TOLERANCE


def test_several_masks_and_batches(fp32_dir, reference):
    fm = FillMask.from_pretrained(fp32_dir)
    texts = [TEXT, "<special1> personne a droit à la <special1>."]
    got = fm(texts, targets=["liberté", "Toute"], whole_word_targets=True)
    assert len(got) == 2 and len(got[1]) == 2  # one list per mask of the second text
    assert got[0] == fm(TEXT, targets=["liberté", "Toute"], whole_word_targets=True)


@pytest.mark.parametrize("text", ["<special1> personne a droit à la <special1>.",
                                  "<special1> a droit à la <special1> de <special1>."], ids=["two masks", "three masks"])
def test_every_mask_of_a_text_matches_torch(fp32_dir, reference, text):
    """Each mask scored with the word in its own slot (the others masked), after another text's
    mask in the same request: every slot's scores and sequences against torch."""
    fm = FillMask.from_pretrained(fp32_dir)
    model, tokenizer = reference
    words = ["liberté", "droit", "Menschenrechte", "a"]
    got = fm([TEXT, text], targets=words, top_k=len(words), whole_word_targets=True)[1]
    ids = tokenizer.encode(text)
    slots = [p for p, t in enumerate(ids) if t == tokenizer.mask_token_id]
    assert len(got) == len(slots) == text.count("<special1>")
    for mask, (slot, predictions) in enumerate(zip(slots, got)):
        want = {w: torch_word_score(model, tokenizer, text, w, mask) for w in words}
        assert [p["token_str"] for p in predictions] == sorted(words, key=lambda w: -want[w]), f"mask {mask}"
        for p in predictions:
            pieces = tokenizer.encode(p["token_str"], add_special_tokens=False)
            assert abs(np.log(p["score"]) - np.log(want[p["token_str"]])) <= TOLERANCE * len(pieces), f"mask {mask}"
            assert p["sequence"] == tokenizer.decode(ids[:slot] + pieces + ids[slot + 1:]), f"mask {mask}"


def test_errors(fp32_dir, v1_dir):
    fm = FillMask.from_pretrained(fp32_dir)
    with pytest.raises(InputError, match="whole_word_targets=True needs targets"):
        fm(TEXT, whole_word_targets=True)
    with pytest.raises(TypeError, match="whole_word_targets must be a bool"):
        fm(TEXT, targets=["a"], whole_word_targets="yes")
    with pytest.raises(InputError, match="tokenizes to nothing"):
        fm(TEXT, targets=["  "], whole_word_targets=True)
    word = next(w for w in ("Menschenrechte", "liberté") if len(fm.tokenizer.encode(w, add_special_tokens=False)) > 1)
    full = " ".join(["a"] * 509) + " <special1>"  # 512 tokens with <s> and </s>: the limit
    assert len(fm.tokenizer.encode(full)) == 512
    with pytest.raises(InputError, match=r"^inputs\[1\] is 512 tokens long; with a target of \d+ pieces"):
        fm([TEXT, full], targets=["a", word], whole_word_targets=True)
    with pytest.raises(ModelFormatError, match="whole-word targets"):
        FillMask.from_pretrained(v1_dir)(TEXT, targets=["a"], whole_word_targets=True)
