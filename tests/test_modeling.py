"""The export wrapper (BERT-shaped, cache-free attention) equals HF's XLM encoder in torch."""

from __future__ import annotations

import pytest
import torch

from xlm_onnx_export.checkpoint import inspect_checkpoint, load_model
from xlm_onnx_export.modeling import XLMEncoderForExport


@pytest.mark.parametrize("fixture", ["tiny_checkpoint", "tiny_lang_checkpoint"])
def test_wrapper_matches_hf_on_real_tokens(request, fixture):
    checkpoint = inspect_checkpoint(request.getfixturevalue(fixture))
    reference_model, model = load_model(checkpoint), load_model(checkpoint)
    torch.manual_seed(0)
    ids = torch.randint(14, model.config.n_words, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    langs = torch.tensor([[0], [1], [2]]).expand(3, 11) if checkpoint.uses_langs else None
    with torch.no_grad():
        expected = reference_model.transformer(input_ids=ids, attention_mask=mask, langs=langs).last_hidden_state
        got = XLMEncoderForExport(model, checkpoint.uses_langs)(ids, mask, langs)
    real = mask.bool()
    assert (expected[real] - got[real]).abs().max().item() < 1e-5
    if checkpoint.uses_langs:  # -1 = no language embedding, as when HF gets no langs at all
        with torch.no_grad():
            no_lang = reference_model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            got = XLMEncoderForExport(load_model(checkpoint), True)(ids, mask, torch.full_like(ids, -1))
        assert (no_lang[real] - got[real]).abs().max().item() < 1e-5
