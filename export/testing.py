"""Random-weight XLM checkpoints for tests and benchmarks (real XLM layout, any size).

Real weights cannot be downloaded here, so tests build tiny checkpoints and benchmarks build
the full-size XLM-100 architecture (latency does not depend on weight values). Weights are
drawn wider than HF's init so predictions are peaked: with near-uniform probabilities, the
order of the top-k would hinge on 1e-7 differences and parity tests could not tell bugs apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from xlm_onnx import format as fmt

from .vocab import SAMPLE_TEXTS, write_xlm_vocab

@dataclass(frozen=True)
class Arch:
    """Size of a random checkpoint. ``n_words=None``: the learnt vocabulary's size."""

    n_layers: int = 2
    dim: int = 64
    n_heads: int = 4
    n_words: int | None = None
    max_positions: int = 512


TINY = Arch()
#: The real xlm-mlm-100-1280 architecture.
XLM_100 = Arch(n_layers=16, dim=1280, n_heads=16, n_words=200000, max_positions=512)


def make_checkpoint(out_dir, arch: Arch = TINY, *, use_lang_emb=False, seed=0, peaked=True,
                    texts=SAMPLE_TEXTS, num_merges=400) -> Path:
    """Writes a random ``XLMWithLMHeadModel`` checkpoint with a BPE vocab learnt from ``texts``.

    Args:
        out_dir: Directory to create (config.json, model.safetensors, tokenizer files).
        arch: Layers, width, heads, vocabulary rows (padded with synthetic tokens when larger
            than the learnt vocabulary; the full-size benchmark uses 200000), positions.
        use_lang_emb: Give the model language embeddings (3 languages: en, fr, de).
        peaked: Redraw weights wide so predictions are peaked (tiny parity tests); a float sets
            the embedding std (``True``: 0.5; wider is sharper). At full size that makes logits so
            large that fp32 rounding alone exceeds the 1e-4 gate, so full-size checkpoints keep
            HF's own init (std 0.02).
    """
    from transformers import XLMConfig, XLMWithLMHeadModel

    out = Path(out_dir)
    write_xlm_vocab(texts, out, num_merges=num_merges)
    vocab = json.loads((out / fmt.VOCAB_FILE).read_text(encoding="utf-8"))
    if arch.n_words is not None and arch.n_words > len(vocab):
        vocab.update({f"zzsyn{i}</w>": i for i in range(len(vocab), arch.n_words)})
        (out / fmt.VOCAB_FILE).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    langs = {"en": 0, "fr": 1, "de": 2} if use_lang_emb else {"en": 0}
    config = XLMConfig(
        vocab_size=len(vocab), emb_dim=arch.dim, n_layers=arch.n_layers, n_heads=arch.n_heads,
        max_position_embeddings=arch.max_positions, use_lang_emb=use_lang_emb, n_langs=len(langs), lang2id=langs,
        id2lang={v: k for k, v in langs.items()}, gelu_activation=True, sinusoidal_embeddings=False, causal=False,
        asm=False, bos_index=fmt.BOS_ID, eos_index=fmt.EOS_ID, pad_index=fmt.PAD_ID, unk_index=fmt.UNK_ID,
        mask_index=fmt.MASK_ID, lang_id=0,
    )
    torch.manual_seed(seed)
    model = XLMWithLMHeadModel(config).eval()
    if peaked:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "layer_norm" in name and name.endswith("weight"):
                    param.normal_(1.0, 0.1)
                elif "embeddings" in name:
                    param.normal_(0.0, 0.5 if peaked is True else float(peaked))
                else:
                    param.normal_(0.0, 0.08 if param.dim() > 1 else 0.1)
    model.save_pretrained(out)
    return out
