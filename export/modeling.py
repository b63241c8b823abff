"""Step 2: a traceable, cache-free, BERT-shaped view of an XLM encoder.

Why not trace ``XLMModel`` itself: transformers 5's XLM attention builds a KV cache
(single-input ``Concat`` on the K/V path), masks with ``masked_fill`` through an ``Expand``
and scales q before the matmul. onnxruntime's transformer optimizer matches none of that
(0/16 Attention fused). This module reuses the checkpoint's own submodules (no weight copy)
but computes attention the way BERT does, which ORT's ``FusionAttention`` recognises::

    attention_mask ─Unsqueeze─Unsqueeze─Cast─Sub(1,·)─Mul(-10000)──────────────┐
    x ─MatMul─Add─Reshape─Transpose(0,2,1,3) ── q ─┐                            │
    x ─MatMul─Add─Reshape─Transpose(0,2,3,1) ── kᵀ ─MatMul─Div(√d)─Add(mask)─Softmax─┐
    x ─MatMul─Add─Reshape─Transpose(0,2,1,3) ── v ───────────────────────────────MatMul
      ─Transpose(0,2,1,3)─Reshape─MatMul─Add─Add(x)─LayerNorm

It is numerically equivalent on every non-padding position (tested to 1e-6):

* additive -10000 vs XLM's ``finfo.min`` fill: both give exactly 0 after softmax in fp32;
* XLM zeroes padding rows (``tensor *= mask``) after the embeddings and each layer. Padding
  rows are only ever read as attention keys/values, which the mask removes, so the zeroing
  cannot change any real token's output and is left out (it would break the pattern).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _Linear(nn.Module):
    """``x @ Wᵀ + b`` with ``Wᵀ`` stored as an ``[in, out]`` parameter.

    Traces to ``MatMul(x, initializer) + Add`` (what ORT's fusions expect) with no ``Transpose``
    on the weight. Tracing ``nn.Linear`` leaves that Transpose to ORT's constant folding, which
    materialised 1.2 GB of transposed copies in memory for the full-size model. The original
    weight is released (the wrapper consumes the model).
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight_t = nn.Parameter(linear.weight.detach().t().contiguous(), requires_grad=False)
        self.bias = nn.Parameter(linear.bias.detach(), requires_grad=False)
        linear.weight = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight_t) + self.bias


#: Name the tied word embedding gets in the traced graph (parameter path in this wrapper).
EMBEDDING_NAME = "transformer.embeddings.weight"


class XLMEncoderForExport(nn.Module):
    """Encoder of an ``XLMWithLMHeadModel`` returning last hidden states ``[batch, seq, dim]``.

    Consumes ``model``: its attention and FFN weights are moved into transposed parameters, so
    run anything that needs the original model (the torch reference) before building this.

    Args:
        model: A loaded ``XLMWithLMHeadModel`` (eval mode).
        uses_langs: Whether to take a ``langs`` input ([batch, seq] ids, -1 = none) and add
            language embeddings.
    """

    def __init__(self, model: nn.Module, uses_langs: bool) -> None:
        super().__init__()
        self.transformer = model.transformer
        self.uses_langs = uses_langs
        self.n_heads = self.transformer.n_heads
        self.head_dim = self.transformer.dim // self.n_heads
        t = self.transformer
        self.act = t.ffns[0].act
        self.linears = nn.ModuleList(
            nn.ModuleDict({name: _Linear(getattr(module, name)) for module, names in
                           ((t.attentions[i], ("q_lin", "k_lin", "v_lin", "out_lin")), (t.ffns[i], ("lin1", "lin2")))
                           for name in names})
            for i in range(t.n_layers)
        )

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, langs: torch.Tensor | None = None
    ) -> torch.Tensor:
        t = self.transformer
        batch, seq = input_ids.shape
        # Two single-axis Unsqueezes on purpose: ORT's mask pattern is Unsqueeze─Unsqueeze.
        additive_mask = (1.0 - attention_mask.unsqueeze(1).unsqueeze(2).to(torch.float32)) * -10000.0
        x = t.embeddings(input_ids) + t.position_embeddings(t.position_ids[:, :seq])
        if self.uses_langs:
            # langs == -1 means "no language": HF's fill-mask pipeline passes no langs at all,
            # and then XLM adds no language embedding. -1 keeps that reachable in one graph.
            known = (langs >= 0).unsqueeze(-1).to(x.dtype)
            x = x + t.lang_embeddings(langs.clamp(min=0)) * known
        x = t.layer_norm_emb(x)
        for i, lin in enumerate(self.linears):
            x = t.layer_norm1[i](x + self._attention(lin, x, additive_mask, batch, seq))
            x = t.layer_norm2[i](x + lin["lin2"](self.act(lin["lin1"](x))))
        return x

    def _attention(self, lin: nn.ModuleDict, x: torch.Tensor, mask: torch.Tensor, batch: int, seq: int) -> torch.Tensor:
        heads, dim = self.n_heads, self.head_dim
        q = lin["q_lin"](x).view(batch, seq, heads, dim).permute(0, 2, 1, 3)
        k = lin["k_lin"](x).view(batch, seq, heads, dim).permute(0, 2, 3, 1)
        v = lin["v_lin"](x).view(batch, seq, heads, dim).permute(0, 2, 1, 3)
        probs = torch.softmax(torch.matmul(q, k) / math.sqrt(dim) + mask, dim=-1)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(batch, seq, heads * dim)
        return lin["out_lin"](context)
