"""The benchmarked systems: what each one loads and runs, end-to-end and model-only.

Each system runs in a fresh worker process (``worker.py``) so cold start and peak RSS are its own.
This module is loaded there by path (importing the ``xlm_onnx_export`` package would import torch
into every worker), so it uses no relative imports and imports nothing heavy at the top: the
parent reads :data:`SYSTEMS` without loading torch or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TOP_K = 5
#: Why optimum is absent from the dev venv (checked with ``pip install --dry-run``, 2026-11).
OPTIMUM_MISSING = ("optimum[onnxruntime] not in this venv: optimum-onnx 0.1.0 requires transformers<4.58 "
                   "(the project pins 5.x); benchmarks/peers/ runs it and OpenVINO in venvs of their own")


@dataclass(frozen=True)
class Info:
    family: str  # hf | optimum | onnx
    variant: str | None = None  # export directory in the cache (onnx systems)
    device: str = "any"  # cpu | gpu | any
    provider: str | None = None  # forced ORT provider (else the run's --provider)
    cuda_graph: bool = False
    int8: bool = False
    fp16: bool = False
    desc: str = ""


SYSTEMS = {
    "hf-fp32": Info("hf", device="cpu", desc="transformers pipeline('fill-mask'), torch eager fp32"),
    "hf-int8": Info("hf", device="cpu", int8=True,
                    desc="same pipeline, torch.ao quantize_dynamic(nn.Linear, qint8)"),
    "optimum-fp32": Info("optimum", device="cpu", desc="optimum ORTModelForMaskedLM in the same pipeline"),
    "onnx-fp32-unfused": Info("onnx", "fp32-unfused", desc="xlm-onnx fp32, exported with optimize=False"),
    "onnx-fp32": Info("onnx", "fp32", desc="xlm-onnx fp32, fused attention/LayerNorm/Gelu"),
    "onnx-int8": Info("onnx", "int8", desc="xlm-onnx int8"),
    "onnx-int8-fp16-table": Info("onnx", "int8-fp16-table",
                                 desc="xlm-onnx int8, embedding / LM head table stored fp16 (fp32 head)"),
    "onnx-fp16": Info("onnx", "fp16", desc="xlm-onnx fp16"),
    "hf-cuda-fp16": Info("hf", device="gpu", fp16=True, desc="transformers pipeline, torch CUDA fp16"),
    "onnx-fp16-cudagraph": Info("onnx", "fp16", device="gpu", provider="cuda", cuda_graph=True,
                                desc="xlm-onnx fp16, CUDA provider, IO binding + CUDA graphs (model-only)"),
    "onnx-fp16-trt": Info("onnx", "fp16", device="gpu", provider="tensorrt",
                          desc="xlm-onnx fp16, TensorRT provider (fp16 engines)"),
}
CPU_DEFAULT = ["hf-fp32", "hf-int8", "optimum-fp32", "onnx-fp32-unfused", "onnx-fp32", "onnx-int8", "onnx-fp16"]
GPU_DEFAULT = ["hf-cuda-fp16", "onnx-fp32", "onnx-fp16", "onnx-int8", "onnx-fp16-cudagraph", "onnx-fp16-trt"]


class Skip(Exception):
    """The system cannot run here (missing package, provider or device); not a failure."""


class NotApplicable(Exception):
    """This system has no such mode (e.g. CUDA graphs need fixed, pre-bound shapes: no end-to-end)."""


def load(name: str, spec: dict):
    info = SYSTEMS[name]
    cls = {"hf": HFSystem, "optimum": OptimumSystem, "onnx": OnnxSystem}[info.family]
    return cls(info, spec)


def _torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


class HFSystem:
    """``transformers.pipeline("fill-mask")``: what a user of transformers + PyTorch runs."""

    def __init__(self, info: Info, spec: dict) -> None:
        import torch
        from transformers import pipeline

        _torch_threads(spec["threads"])
        self.gpu = info.device == "gpu"
        if self.gpu and not torch.cuda.is_available():
            raise Skip("torch sees no CUDA device")
        ckpt = spec["checkpoint"]
        kwargs = dict(device=0, dtype=torch.float16) if self.gpu else dict(device="cpu", dtype=torch.float32)
        self.pipe = pipeline("fill-mask", model=ckpt, tokenizer=ckpt, **kwargs)
        if info.int8:
            self.pipe.model = torch.ao.quantization.quantize_dynamic(
                self.pipe.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        self.model = self.pipe.model.eval()
        self.device = self.model.device

    def check_length(self, text: str, n_tokens: int) -> None:
        got = len(self.pipe.tokenizer(text)["input_ids"])
        if got != n_tokens:
            raise RuntimeError(f"transformers tokenizes the input to {got} tokens, not {n_tokens}")

    def e2e(self, texts: list[str]):
        out = self.pipe(texts if len(texts) > 1 else texts[0], top_k=TOP_K, batch_size=len(texts))
        return out if len(texts) > 1 else [out]

    def model_fn(self, ids, mask_id: int):
        """Forward + softmax/top-k at the masks: the pipeline's ``forward`` and numeric postprocess."""
        import torch

        t_ids = torch.from_numpy(ids).to(self.device)
        att = torch.ones_like(t_ids)
        rows, cols = (t_ids == mask_id).nonzero(as_tuple=True)

        def run():
            with torch.inference_mode():
                logits = self.model(input_ids=t_ids, attention_mask=att).logits
                top = logits[rows, cols].float().softmax(-1).topk(TOP_K)
                if self.gpu:
                    torch.cuda.synchronize()
                return top
        return run

    def weight_bytes(self) -> int:
        """Bytes of weights read per forward: every Linear/LayerNorm weight once, embeddings only
        where tied to a Linear (the LM head); gathered rows of embedding tables are negligible."""
        import torch

        total, seen = 0, set()
        for mod in self.model.modules():
            if isinstance(mod, torch.nn.Embedding):
                continue
            packed = getattr(mod, "_packed_params", None)
            if packed is not None and hasattr(packed, "_weight_bias"):
                w, b = packed._weight_bias()
                total += w.numel() * w.element_size() + (0 if b is None else b.numel() * b.element_size())
                continue
            for p in mod.parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel() * p.element_size()
        return total


class OptimumSystem(HFSystem):
    """optimum's ``ORTModelForMaskedLM`` (exported from the same checkpoint) in the same pipeline."""

    def __init__(self, info: Info, spec: dict) -> None:
        try:
            from optimum.onnxruntime import ORTModelForMaskedLM
        except ImportError:
            raise Skip(OPTIMUM_MISSING) from None
        import onnxruntime as ort
        from transformers import AutoTokenizer, pipeline

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = spec["threads"], 1
        out = Path(spec["cache_root"]) / "optimum-fp32"
        if not (out / "model.onnx").is_file():
            ORTModelForMaskedLM.from_pretrained(spec["checkpoint"], export=True).save_pretrained(out)
        model = ORTModelForMaskedLM.from_pretrained(out, session_options=options, provider="CPUExecutionProvider")
        tokenizer = AutoTokenizer.from_pretrained(spec["checkpoint"])
        self.pipe = pipeline("fill-mask", model=model, tokenizer=tokenizer)
        self.model, self.gpu, self.device, self.dir = model, False, "cpu", out

    def model_fn(self, ids, mask_id: int):
        import numpy as np

        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        return lambda: self.model.model.run(None, feed)

    def weight_bytes(self) -> int:
        return onnx_weight_bytes(self.dir / "model.onnx")


class OnnxSystem:
    """``xlm_onnx.FillMask`` (end-to-end) and its ``InferenceSession`` (model-only)."""

    def __init__(self, info: Info, spec: dict) -> None:
        from xlm_onnx import FillMask

        self.info, self.threads = info, spec["threads"]
        self.dir = Path(spec["model_dir"])
        self.provider = info.provider or spec["provider"]
        self.gpu = self.provider != "cpu"
        providers = self.provider
        if info.cuda_graph:
            providers = [("CUDAExecutionProvider", {"enable_cuda_graph": "1"}), "CPUExecutionProvider"]
        self.providers = providers
        self.fm = FillMask.from_pretrained(self.dir, provider=providers, threads=self.threads,
                                           batch_size=spec["max_batch"])
        self.session = self.fm.session
        self.inputs = tuple(self.fm.manifest.inputs)  # kept: feed() outlives the session (profiling)
        self.active_providers = self.session.get_providers()

    def check_length(self, text: str, n_tokens: int) -> None:
        got = len(self.fm.tokenizer.encode(text))
        if got != n_tokens:
            raise RuntimeError(f"xlm_onnx tokenizes the input to {got} tokens, not {n_tokens}")

    def e2e(self, texts: list[str]):
        if self.info.cuda_graph:
            raise NotApplicable("CUDA graphs need pre-bound fixed shapes: model-only")
        return self.fm(texts, top_k=TOP_K)

    def feed(self, ids):
        import numpy as np

        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "top_k": np.array([TOP_K], dtype=np.int64), "target_ids": np.zeros(0, dtype=np.int64)}
        if "label_ids" in self.inputs:  # format 2: no labels here
            feed["label_ids"] = np.zeros(0, dtype=np.int64)
        return feed

    def model_fn(self, ids, mask_id: int):
        feed = self.feed(ids)
        if not self.gpu:
            return lambda: self.session.run(None, feed)
        session = self.session
        if self.info.cuda_graph:  # one captured graph per shape: a fresh session per scenario
            from xlm_onnx.session import create_session

            session = create_session(self.dir / "model.onnx", self.providers, self.threads)
            n_masks = int((ids == mask_id).sum())
            return io_binding_fn(session, feed, fixed_outputs=n_masks)
        return io_binding_fn(session, feed)

    def weight_bytes(self) -> int:
        return onnx_weight_bytes(self.dir / "model.onnx")


def io_binding_fn(session, feed: dict, fixed_outputs: int | None = None):
    """Inputs copied to the GPU once, outputs left there: times the model, not host<->device copies.
    ``top_k``/``target_ids`` stay on the host (TopK's k is read there anyway), except for CUDA
    graphs (``fixed_outputs`` = number of masks), which need every input and output at a fixed
    device address: outputs are then pre-allocated with their known shapes."""
    import numpy as np
    import onnxruntime as ort

    binding, keep = session.io_binding(), []
    for name, array in feed.items():
        if name in ("top_k", "target_ids", "label_ids") and fixed_outputs is None:
            binding.bind_cpu_input(name, array)
        else:
            value = ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0)
            keep.append(value)
            binding.bind_ortvalue_input(name, value)
    shapes = {"scores": ([TOP_K], np.float32), "token_ids": ([TOP_K], np.int64),
              "mask_positions": ([2], np.int64), "target_scores": ([0], np.float32)}
    for out in session.get_outputs():
        if fixed_outputs is None:
            binding.bind_output(out.name, "cuda", 0)
        else:
            if out.name == "last_hidden_state":  # format 2: [rows, seq, dim]
                shape, dtype = [*feed["input_ids"].shape, out.shape[-1]], np.float32
            elif out.name == "label_log_probs":  # format 2: no labels are fed
                shape, dtype = [0], np.float32
            else:
                tail, dtype = shapes[out.name]
                shape = [fixed_outputs, *tail]
            value = ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, "cuda", 0)
            keep.append(value)
            binding.bind_ortvalue_output(out.name, value)

    def run():
        session.run_with_iobinding(binding)  # synchronises the stream before returning
        return keep
    return run


def onnx_weight_bytes(model_path: Path) -> int:
    """Bytes of initializers read per inference: all, except those consumed only by lookups
    (Gather/EmbedLayerNormalization touch a few rows). A table tied to the LM head counts once."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(model_path), load_external_data=False).graph
    consumers: dict[str, set] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    # ORT folds a Cast of an initializer at session start (an fp16-stored embedding table is
    # read as fp32 by the head), so such a tensor counts at the Cast's target width.
    widened = {node.input[0]: helper.tensor_dtype_to_np_dtype(helper.get_node_attr_value(node, "to")).itemsize
               for node in graph.node if node.op_type == "Cast"}
    total = 0
    for init in graph.initializer:
        if consumers.get(init.name, set()) <= {"Gather", "EmbedLayerNormalization"}:
            continue
        n = 1
        for d in init.dims:
            n *= d
        total += n * widened.get(init.name, helper.tensor_dtype_to_np_dtype(init.data_type).itemsize)
    return total
