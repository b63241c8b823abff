"""Step 2b: trace the export wrapper with torch 2.13's ``torch.export``-based ONNX exporter.

The dynamo path is used (not the legacy TorchScript one): for the full-size model it measured
26 s and 2.7 GB peak, and writes one external-data file with the tied embedding stored once;
the legacy path duplicated the tied weight and peaked at 6.6 GB. ``optimize=False`` keeps the
graph in the shape ORT's BERT fusions expect (onnxscript's optimizer merges the two mask
Unsqueezes into one, which ``FusionAttention`` no longer matches) and keeps parameter names.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

from xlm_onnx import format as fmt

from .head import HIDDEN
from .modeling import XLMEncoderForExport


def trace_encoder(model, uses_langs: bool, path: Path, opset: int) -> None:
    """Writes the encoder graph (inputs ids/mask[/langs], output ``last_hidden_state``) to ``path``.

    External data goes to ``<path>.data`` beside it.
    """
    wrapper = XLMEncoderForExport(model, uses_langs).eval()
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    args = (ids, mask, torch.zeros_like(ids)) if uses_langs else (ids, mask)
    names = [fmt.INPUT_IDS, fmt.ATTENTION_MASK] + ([fmt.LANGS] if uses_langs else [])
    batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("seq", min=2, max=model.config.max_position_embeddings)
    dynamic = {name: {0: batch, 1: seq} for name in names}
    # torch.onnx prints its own progress lines and warns about torchvision ops; the CLI shows
    # its own steps instead, so both are muted here (errors still raise).
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, args, str(path), input_names=names, output_names=[HIDDEN], dynamic_shapes=dynamic,
            dynamo=True, opset_version=opset, external_data=True, optimize=False, verbose=False,
        )


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)
