"""What each compared system builds, loads and runs: xlm-onnx, the HF pipeline, optimum-onnx, OpenVINO.

Loaded by path by ``worker.py`` in whichever interpreter runs the system: the project's venv
(xlm-onnx, transformers 5.x + torch) or a peer's venv (``envs.py``: transformers 4.57 with
optimum-onnx or optimum-intel). So it imports only the standard library at the top.

Every system answers three timed calls on the same texts and ids:

- ``e2e(text)``: text -> top-5 through the system's pipeline: ``pipeline("fill-mask")`` of
  transformers, or of optimum-onnx / optimum-intel (the same pipeline over their models), or
  :class:`xlm_onnx.FillMask`.
- ``forward(ids)``: the model call the pipeline makes. The peers' MaskedLM graphs compute the
  LM head at every position (125 x 200k logits at 125 tokens); xlm-onnx's graph only at the mask.
- ``encoder(ids)``: the encoder alone, no LM head (a feature-extraction export for the peers,
  xlm-onnx's ``last_hidden_state`` output on unmasked ids): the like-for-like comparison.

With ``spec["task"] == "cls"`` (a fine-tuned ``XLMForSequenceClassification``) every system
answers one call instead, ``classify(text or texts)``: text-classification end to end
(tokenize, model, head, softmax, best label) through ``pipeline("text-classification")`` of
transformers, optimum-onnx or optimum-intel, or :class:`xlm_onnx.TextClassifier`; a list of
texts is one batch of that many rows.
"""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

TOP_K = 5


def ensure(out: Path, build) -> Path:
    """``out``, built by ``build(tmp)`` into ``out.partial`` and renamed once complete."""
    if (out / ".complete").is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (tmp / ".complete").write_text("")
    tmp.rename(out)
    return out


def _np():
    import numpy as np

    return np


class Peer:
    """Base of every system. The pipeline-based ones (HF, optimum ORT, OpenVINO) set
    ``self.pipe`` in :meth:`load_mlm` and ``self.enc`` in :meth:`load_encoder`; :meth:`prepare`
    builds what is missing under ``spec["work_dir"]`` (run in a process of its own first, so
    export memory and time stay out of the timed process)."""

    def __init__(self, name: str, spec: dict) -> None:
        self.name, self.spec, self.ckpt = name, spec, spec["checkpoint"]
        self.work = Path(spec["work_dir"])
        self.notes: list[str] = []

    def prepare(self) -> None:
        pass

    def tokenizer(self):
        """The checkpoint's tokenizer. transformers 5 writes ``extra_special_tokens`` as a list,
        which 4.57 (the peers' version) cannot read: for 4.x a copy with the list under its old
        name, ``additional_special_tokens`` (same tokens, same ids)."""
        import transformers
        from transformers import AutoTokenizer

        if int(transformers.__version__.split(".")[0]) >= 5:
            return AutoTokenizer.from_pretrained(self.ckpt)
        src = Path(self.ckpt)

        def build(tmp: Path) -> None:
            for f in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
                if (src / f).is_file():
                    shutil.copy(src / f, tmp / f)
            config = json.loads((tmp / "tokenizer_config.json").read_text())
            extra = config.pop("extra_special_tokens", None)
            if isinstance(extra, list):
                config["additional_special_tokens"] = extra
            (tmp / "tokenizer_config.json").write_text(json.dumps(config))
        note = "tokenizer: the checkpoint's, its extra_special_tokens list (transformers 5) renamed for 4.x"
        if note not in self.notes:
            self.notes.append(note)
        return AutoTokenizer.from_pretrained(ensure(self.work / "tokenizer-transformers4", build))

    def tokenizer_info(self, text: str) -> dict:
        enc = self.pipe.tokenizer(text)
        return {"n_tokens": len(enc["input_ids"]), "keys": sorted(enc.keys())}

    def e2e(self, text: str):
        return self.pipe(text, top_k=TOP_K)

    def classify(self, texts):
        """The best label and its score per text (one batch when ``texts`` is a list)."""
        if isinstance(texts, str):
            return self.pipe(texts)
        return self.pipe(texts, batch_size=len(texts))

    def feed(self, ids, names) -> dict:
        np = _np()
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in names:  # the peers' XLM graphs take it (transformers 4.57's tokenizer returns it)
            feed["token_type_ids"] = np.zeros_like(ids)
        return {k: v for k, v in feed.items() if k in names}

    def unload(self) -> None:
        self.pipe = self.enc = None
        gc.collect()


class HF(Peer):
    """``transformers.pipeline`` (fill-mask or text-classification) in torch eager fp32, or after torch
    dynamic int8."""

    def load_mlm(self) -> None:
        self._load("fill-mask")

    def load_cls(self) -> None:
        self._load("text-classification")

    def _load(self, task: str) -> None:
        import torch
        from transformers import pipeline

        torch.set_num_threads(self.spec["threads"])
        self.pipe = pipeline(task, model=self.ckpt, tokenizer=self.ckpt, device="cpu")
        if self.name.endswith("int8"):
            self.pipe.model = torch.ao.quantization.quantize_dynamic(
                self.pipe.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        self.model = self.pipe.model.eval()

    def forward(self, ids, mask_id: int):
        import torch

        t = torch.from_numpy(ids)
        rows, cols = (t == mask_id).nonzero(as_tuple=True)

        def run():
            with torch.inference_mode():
                logits = self.model(input_ids=t, attention_mask=torch.ones_like(t)).logits
                return logits[rows, cols].softmax(-1).topk(TOP_K)
        return run

    def load_encoder(self) -> None:
        self.enc = self.model.transformer  # XLMWithLMHeadModel's encoder, already quantized for int8

    def encoder(self, ids):
        import torch

        t = torch.from_numpy(ids)

        def run():
            with torch.inference_mode():
                return self.enc(input_ids=t, attention_mask=torch.ones_like(t))[0]
        return run

    def unload(self) -> None:
        self.model = None
        super().unload()


class XlmOnnx(Peer):
    """:class:`xlm_onnx.FillMask` on an export directory (``spec["model_dir"]``): no torch, no transformers."""

    def tokenizer_info(self, text: str) -> dict:
        tok = getattr(self.fm, "tokenizer", None) or self.fm.model.tokenizer  # FillMask's, or any task's model's
        return {"n_tokens": len(tok.encode(text)), "keys": ["input_ids", "attention_mask"]}

    def load_cls(self) -> None:
        from xlm_onnx import TextClassifier

        self.model_dir = Path(self.spec["model_dir"])
        self.fm = TextClassifier.from_pretrained(self.model_dir, threads=self.spec["threads"])
        manifest = self.fm.model.manifest
        self.notes.append(f"precision {manifest.precision}, activations {(manifest.quantization or {}).get('activations')}")

    def classify(self, texts):
        return self.fm(texts)

    def load_mlm(self) -> None:
        from xlm_onnx import FillMask

        self.model_dir = Path(self.spec["model_dir"])
        self.fm = FillMask.from_pretrained(self.model_dir, threads=self.spec["threads"], batch_size=1)
        self.session, self.manifest = self.fm.session, self.fm.manifest
        self.notes.append(f"precision {self.manifest.precision}")

    def e2e(self, text: str):
        return self.fm(text, top_k=TOP_K)

    def _feed(self, ids) -> dict:
        from xlm_onnx import format as fmt

        np = _np()
        feed = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: np.ones_like(ids), fmt.TOP_K: np.array([TOP_K]),
                fmt.TARGET_IDS: np.zeros(0, np.int64)}
        if fmt.LABEL_IDS in self.manifest.inputs:
            feed[fmt.LABEL_IDS] = np.zeros(0, np.int64)
        return feed

    def forward(self, ids, mask_id: int):
        from xlm_onnx import format as fmt

        feed = self._feed(ids)
        return lambda: self.session.run(list(fmt.FILL_MASK_OUTPUTS), feed)

    def load_encoder(self) -> None:
        pass  # the same session: last_hidden_state is an output of every format-2 graph

    def encoder(self, ids):
        """``last_hidden_state`` of ids with no mask: the LM head then decodes no row (what
        :class:`xlm_onnx.Embedder` runs)."""
        from xlm_onnx import format as fmt

        ids = ids.copy()
        ids[ids == self.manifest.mask_token_id] = self.spec["filler_id"]
        feed = self._feed(ids)
        return lambda: self.session.run([fmt.LAST_HIDDEN_STATE], feed)

    def unload(self) -> None:
        self.fm = self.session = None
        gc.collect()


def load(name: str, spec: dict) -> Peer:
    """The system ``name`` (``spec["family"]`` says which class) with its spec."""
    family = spec["family"]
    if family == "xlm-onnx":
        return XlmOnnx(name, spec)
    if family == "hf":
        return HF(name, spec)
    if family == "optimum-ort":
        from ort_peer import OptimumORT

        return OptimumORT(name, spec)
    if family == "openvino":
        from ov_peer import OpenVINO

        return OpenVINO(name, spec)
    raise ValueError(f"unknown system family {family!r}")
