"""The export job: check -> load -> trace -> fuse -> convert (fp16/int8) -> heads -> validate -> publish."""

from __future__ import annotations

import gc
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import onnx

from xlm_onnx import format as fmt
from xlm_onnx.tokenization import XLMTokenizer

from .checkpoint import inspect_checkpoint, load_model
from .external import load_lazy, save_repacked
from .head import check_embedding
from .heads import head_spec
from .model_card import write_model_card
from .modeling import EMBEDDING_NAME
from .optimize import count_fused, optimize_encoder
from .per_row import to_per_row
from .precision import (Int8Options, quantize_encoder, quantize_tied_embedding,
                        store_tied_embedding_fp16, to_fp16)
from .progress import Steps, peak_rss_mb
from .publish import check_weight_range, gate, runtime_versions, staged
from .trace import trace_encoder

DEFAULT_OPSET = 18
MIN_OPSET = 17  # LayerNormalization
#: Fused fp32 graph handed to ORT's quantizer (int8 only); removed once model.onnx is saved.
ENCODER_INT8_INPUT = "encoder_fp32.onnx"


@dataclass(frozen=True)
class ExportResult:
    """What an export produced."""

    out_dir: Path
    manifest: fmt.Manifest
    seconds: float
    peak_rss_mb: float
    step_seconds: dict
    step_peak_rss_mb: dict


class Exporter:
    """Exports a local Hugging Face XLM checkpoint to an xlm-onnx model directory.

    Writes go to a temporary sibling of ``out_dir`` that is renamed into place only after
    validation passed, so ``out_dir`` never holds a half-written export.

    Args:
        checkpoint_dir: Local HF checkpoint (config.json, weights, vocab.json, merges.txt).
        out_dir: Directory to create.
        precision: ``fp32``, ``fp16`` (for GPUs; fp32 graph I/O) or ``int8`` (dynamic, for CPUs).
        opset: ONNX opset (>= 17).
        optimize: Fuse attention/LayerNorm/Gelu into ORT contrib ops.
        int8: int8 only: :class:`~.precision.Int8Options` (per-channel scales, storage of the
            tied embedding / LM head, per-row or per-tensor activations); ``None``: the defaults.
        force: Replace an existing ``out_dir``.
        progress: Print steps to stderr (``None``: only on a terminal).
    """

    def __init__(self, checkpoint_dir, out_dir, *, precision="fp32", opset=DEFAULT_OPSET, optimize=True,
                 int8=None, force=False, progress=None) -> None:
        if precision not in fmt.PRECISIONS:
            raise ValueError(f"precision must be one of {fmt.PRECISIONS}, not {precision!r}")
        if not isinstance(opset, int) or opset < MIN_OPSET:
            raise ValueError(f"opset must be an int >= {MIN_OPSET}, not {opset!r}")
        self.checkpoint_dir = Path(checkpoint_dir)
        self.out_dir = Path(out_dir)
        self.precision, self.opset, self.optimize, self.force = precision, opset, optimize, force
        if int8 is not None and not isinstance(int8, Int8Options):
            raise TypeError(f"int8 must be an Int8Options, not {type(int8).__name__}")
        if int8 is not None and precision != "int8":
            raise ValueError(f"int8 options apply to precision='int8' only, not {precision!r}")
        self.int8 = (int8 or Int8Options()) if precision == "int8" else None
        self.steps = Steps(6 if precision == "fp32" else 7, progress)

    def run(self) -> ExportResult:
        """Runs every step; raises before touching ``out_dir`` if any fails."""
        start = time.perf_counter()
        if self.out_dir.exists() and not self.force:  # before the checkpoint is read
            raise FileExistsError(f"{self.out_dir}: exists; pass force=True (--force) to replace it")
        checkpoint = inspect_checkpoint(self.checkpoint_dir)
        self.spec = head_spec(checkpoint.config, str(checkpoint.path / "config.json"))  # refused before loading
        with staged(self.out_dir, self.force) as tmp:
            manifest = self._build(checkpoint, tmp)
        return ExportResult(self.out_dir, manifest, time.perf_counter() - start, peak_rss_mb(),
                            dict(self.steps.timings), dict(self.steps.peak_rss_mb))

    def _build(self, checkpoint, tmp: Path) -> fmt.Manifest:
        step = self.steps.step
        path = tmp / fmt.MODEL_FILE
        with step(f"load checkpoint ({self.spec.model_class})"):
            model = load_model(checkpoint, self.spec.model_class)
            tokenizer = XLMTokenizer.from_pretrained(checkpoint.path)
            config = model.config
        with step("torch reference on probes; trace with torch.onnx (dynamo)"):
            head = self.spec.builder_class()(model, tokenizer, checkpoint)  # golden answers, head weights
            golden = head.golden
            trace_encoder(model, checkpoint.uses_langs, path, self.opset)  # consumes the model
            del model  # from here on the weights live only in the ONNX data file (bounded memory)
            gc.collect()
        with step("fuse attention / LayerNorm / Gelu" if self.optimize else "load graph (no fusion)"):
            graph, fusion = optimize_encoder(path, config, self.optimize, embed_layer_norm=self.precision != "int8")
            embedding = check_embedding(graph, EMBEDDING_NAME, config.n_words, config.emb_dim)
        if self.precision != "fp32":
            with step(f"convert to {self.precision}"):
                graph = self._convert(graph, embedding, tmp)
                fusion = count_fused(graph) if fusion else fusion
        with step(f"append heads ({', '.join(head.graph_heads)}) and save"):
            head.append(graph, self.int8.head_precision if self.int8 else self.precision)
            if self.int8 and self.int8.activations == fmt.INT8_PER_ROW:  # after the heads: the int8 head too
                to_per_row(graph, tmp)
                fusion = count_fused(graph) if fusion else fusion
            io = tuple(i.name for i in graph.graph.input), tuple(o.name for o in graph.graph.output)
            manifest = self._manifest(checkpoint, tokenizer, config, io, fusion, {}, {}, head)
            onnx.helper.set_model_props(graph, manifest.metadata_props())
            check_weight_range(graph, tmp, self.int8)
            save_repacked(graph, tmp, path)
            del graph
            for leftover in (tmp / ENCODER_INT8_INPUT, tmp / f"{ENCODER_INT8_INPUT}.data"):
                leftover.unlink(missing_ok=True)
        with step("validate against torch"):
            report = gate(path, golden, self.precision, tokenizer, self.int8.activations if self.int8 else None)
        with step("write tokenizer files and manifest"):
            golden.write(tmp)
            names = [fmt.MODEL_FILE, fmt.MODEL_DATA_FILE, fmt.GOLDEN_FILE]
            for name in fmt.TOKENIZER_FILES:
                if (checkpoint.path / name).is_file():
                    shutil.copyfile(checkpoint.path / name, tmp / name)
                    names.append(name)
            manifest = self._manifest(checkpoint, tokenizer, config, io, fusion, report.as_dict(),
                                      fmt.describe_files(tmp, names), head)
            fmt.write_manifest(tmp, manifest)
            write_model_card(tmp, manifest, checkpoint.path, name=self.out_dir.name)  # not in the manifest: prose
        return manifest

    def _convert(self, graph: onnx.ModelProto, embedding: str, tmp: Path) -> onnx.ModelProto:
        """fp16: ORT's converter. int8: tied table by hand, then ORT's ``quantize_dynamic``."""
        if self.precision == "fp16":
            return to_fp16(graph, tmp)
        if self.int8.tied_embedding == "int8":
            quantize_tied_embedding(graph, embedding, tmp, self.int8.weight_max)
        elif self.int8.tied_embedding == "fp16":
            store_tied_embedding_fp16(graph, embedding, tmp)
        source = tmp / ENCODER_INT8_INPUT
        save_repacked(graph, tmp, source)
        del graph
        quantize_encoder(source, tmp / fmt.MODEL_FILE, self.int8)
        return load_lazy(tmp / fmt.MODEL_FILE)

    def _manifest(self, checkpoint, tokenizer, config, io, fusion, validation, files, head) -> fmt.Manifest:
        import torch
        import transformers

        return fmt.Manifest(
            format_version=fmt.FORMAT_VERSION,
            precision=self.precision,
            opset=self.opset,
            inputs=io[0],
            outputs=io[1],
            mask_token_id=int(tokenizer.mask_token_id),
            pad_token_id=int(config.pad_index),
            vocab_size=int(config.n_words),
            max_positions=int(config.max_position_embeddings),
            lang2id=checkpoint.lang2id,
            source={"config": checkpoint.config, "config_sha256": checkpoint.config_sha256,
                    "weights_file": checkpoint.weights_file},
            versions={**runtime_versions(), "torch": torch.__version__, "transformers": transformers.__version__,
                      "python": platform.python_version()},
            validation=validation,
            fusion=fusion,
            files=files,
            quantization=self.int8.as_manifest() if self.int8 else {},
            heads=tuple(head.graph_heads),
            **head.manifest_fields(),
        )

