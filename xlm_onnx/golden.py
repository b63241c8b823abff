"""Golden-output self-check: does this machine reproduce what the export was validated on?

At export, the probes (texts, their ids, masked positions) and the torch fp32 reference's top
answers are written to ``golden.json`` inside the model directory. :func:`check_model` (CLI
``xlm-onnx check DIR``) re-runs those probes on the machine at hand, with its own CPU kernels and
tokenizer, and applies the same gates the exporter applied. The exporter's validation is the
same :func:`compare`, fed with the same golden data, so "passed at export" and "passes here" mean
one thing.

Measured on the reference's own top-5 tokens, through the graph's ``target_ids`` input::

    golden top-5 ids ─► target_ids ─► graph ─► target_scores   |Δscore| vs golden scores
    graph top_k=5 ─► token_ids                                   top-1 agreement, top-5 overlap
    golden labels ─► label_ids ─► graph ─► label_log_probs       |Δlog p| vs golden        (v2)
    graph last_hidden_state ─mean pool─► embeddings              cosine vs golden          (v2)

Directories of format 1 (or golden files of version 1) have no such heads / answers; the two v2
figures are then ``None`` and not gated.

Batch invariance is measured on the same probes: each alone (no padding), all in one padded
batch, and all in reverse order with extra padding; every output a probe gets (its target
scores, label log-probs and hidden states) must be bit-identical across the three for a per-row
int8 directory. Other directories report the drift (per-tensor int8: answers move with the batch).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import format as fmt
from .cpu import cpu_info
from .errors import ModelFormatError

#: Reference answers kept per mask (top-5 are gated; the rest help diagnose a failure).
GOLDEN_TOP_K = 10
GOLDEN_VERSION = 2
#: Golden versions this runtime reads (1: fill-mask answers only).
READABLE_GOLDEN_VERSIONS = (1, 2)


@dataclass(frozen=True)
class Gate:
    """Acceptance thresholds of one precision against fp32 torch."""

    max_abs_score: float
    min_top1: float
    min_top5_overlap: float
    max_abs_label_log_prob: float = float("inf")
    min_embedding_cosine: float = -1.0
    max_abs_logit: float = float("inf")


#: The one place where accuracy thresholds live (random tiny weights are pessimistic for int8).
#: Label log-prob and embedding gates from the tiny checkpoint's export: |delta log p|
#: 6e-6 / 0.011 / 0.23 and min cosine 0.99999999 / 0.9999998 / 0.99987 (fp32 / fp16 / int8),
#: gated about 10x looser; the cosine gates 0.99999 / 0.999 / 0.99 leave 1 - cosine at least 70x
#: the measured one.
#: fp32 from what is achieved (tiny checkpoints, AVX-512 VNNI and AVX2 emulated):
#: |delta score| at most 1.8e-6, |delta log p| 5.7e-6 (1.1e-5 on longer texts), so 1e-5 and
#: 5e-5; a LayerNorm eps of 1e-5 instead of XLM's 1e-12 gives 8.5e-6 and 1.4e-4 (caught by the
#: second). The tests' fp32 tolerances are these figures (tests/parity.py).
#: Fine-tuned heads' logits (tiny random classifiers, tanh / none / gelu summaries): |delta logit|
#: at most 3.6e-7 / 8.8e-4 / 0.016 (fp32 / fp16 / int8); gated at 1e-5 (the fp32 score gate),
#: about 10x and 15x looser.
GATES = {
    "fp32": Gate(max_abs_score=1e-5, min_top1=0.95, min_top5_overlap=0.95, max_abs_label_log_prob=5e-5,
                 min_embedding_cosine=0.99999, max_abs_logit=1e-5),
    "fp16": Gate(max_abs_score=5e-3, min_top1=0.80, min_top5_overlap=0.80, max_abs_label_log_prob=0.1,
                 min_embedding_cosine=0.999, max_abs_logit=1e-2),
    "int8": Gate(max_abs_score=5e-2, min_top1=0.50, min_top5_overlap=0.50, max_abs_label_log_prob=2.0,
                 min_embedding_cosine=0.99, max_abs_logit=0.25),
}


@dataclass(frozen=True)
class Golden:
    """Contents of ``golden.json``: probes and the torch fp32 reference's answers.

    Attributes:
        texts: Probe sentences, before masking.
        token_ids: Their ids from the exporter's tokenizer (no padding), to re-check tokenization.
        input_ids: Right-padded, masked ids fed to the graph.
        attention_mask: 1 for tokens, 0 for padding.
        langs: Language ids per token, for models with language embeddings (else ``None``).
        top_ids: Reference top-k token ids per mask, in the graph's mask order.
        top_scores: Their fp32 probabilities.
        made_on: The export machine's CPU (:meth:`xlm_onnx.cpu.CpuInfo.as_dict`).
        labels: The original id at each mask (golden version 2; else ``None``).
        label_log_probs: Their fp32 log-probabilities.
        embeddings: Mean-pooled last hidden state of each probe row ``[batch, dim]``.
        logits: A fine-tuned head's logits of each probe row ``[batch, n]`` (its probes are not
            masked: ``top_ids`` and ``top_scores`` are then empty).
    """

    texts: list[str]
    token_ids: list[list[int]]
    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    langs: list[list[int]] | None
    top_ids: list[list[int]]
    top_scores: list[list[float]]
    made_on: dict = field(default_factory=dict)
    labels: list[int] | None = None
    label_log_probs: list[float] | None = None
    embeddings: list[list[float]] | None = None
    logits: list[list[float]] | None = None

    def feed(self, top_k: int = 5, with_labels: bool = False) -> dict[str, np.ndarray]:
        """Graph inputs: the probes, ``top_k``, the reference top-5 ids as targets and, with
        ``with_labels`` (a format-2 graph), ``label_ids`` (empty when this golden has none)."""
        feed = {fmt.INPUT_IDS: np.array(self.input_ids, dtype=np.int64),
                fmt.ATTENTION_MASK: np.array(self.attention_mask, dtype=np.int64),
                fmt.TOP_K: np.array([top_k], dtype=np.int64),
                fmt.TARGET_IDS: np.array(self.top_ids, dtype=np.int64)[:, :5].reshape(-1)}
        if with_labels:
            feed[fmt.LABEL_IDS] = np.array(self.labels or [], dtype=np.int64)
        if self.langs is not None:
            feed[fmt.LANGS] = np.array(self.langs, dtype=np.int64)
        return feed

    def write(self, model_dir: str | os.PathLike) -> Path:
        path = Path(model_dir) / fmt.GOLDEN_FILE
        path.write_text(json.dumps({"golden_version": GOLDEN_VERSION, **asdict(self)}, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        return path

    @classmethod
    def read(cls, model_dir: str | os.PathLike) -> "Golden":
        """Raises:
            ModelFormatError: The file is missing (an export older than the self-check) or unreadable.
        """
        path = Path(model_dir) / fmt.GOLDEN_FILE
        if not path.is_file():
            raise ModelFormatError(f"{path}: missing; this directory predates the self-check "
                                   "(re-export it with this xlm-onnx to get one)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.pop("golden_version") not in READABLE_GOLDEN_VERSIONS:
                raise ValueError("unknown golden_version")
            return cls(**data)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{path}: unreadable ({exc})") from None


def make_golden(texts, token_ids, batch: dict[str, np.ndarray], reference, labels: np.ndarray) -> Golden:
    """Golden data from the exporter's probe batch and the torch answers on it.

    Args:
        texts, token_ids: The probe sentences and their unpadded ids.
        batch: The graph inputs of the probes.
        reference: Torch fp32 answers with ``probs`` ``[n_masks, V]``, ``label_log_probs``
            ``[n_masks]`` and ``embeddings`` ``[batch, dim]`` (mean-pooled).
        labels: The id whose log-probability was taken at each mask.
    """
    ref_probs = reference.probs
    top = np.argsort(-ref_probs, axis=-1, kind="stable")[:, :GOLDEN_TOP_K]
    langs = batch.get(fmt.LANGS)
    return Golden(texts=list(texts), token_ids=[list(map(int, t)) for t in token_ids],
                  input_ids=batch[fmt.INPUT_IDS].tolist(), attention_mask=batch[fmt.ATTENTION_MASK].tolist(),
                  langs=None if langs is None else langs.tolist(), top_ids=top.tolist(),
                  top_scores=np.take_along_axis(ref_probs, top, -1).astype(float).tolist(),
                  made_on=cpu_info().as_dict(), labels=[int(i) for i in labels],
                  label_log_probs=np.asarray(reference.label_log_probs, dtype=float).tolist(),
                  embeddings=np.asarray(reference.embeddings, dtype=float).tolist())


@dataclass(frozen=True)
class CheckReport:
    """Figures of one run of the golden probes (the exporter stores these in the manifest)."""

    n_sentences: int
    n_masks: int
    max_abs_score_delta: float | None
    top1_agreement: float
    top5_overlap: float | None
    gate: dict
    tokenizer_mismatches: int = 0
    max_abs_label_log_prob_delta: float | None = None
    min_embedding_cosine: float | None = None
    max_abs_batch_drift: float | None = None
    requires_batch_invariance: bool = False
    max_abs_logit_delta: float | None = None

    def failures(self) -> list[str]:
        """Human-readable list of missed thresholds (empty when the gate passes)."""
        gate = Gate(**self.gate)
        out = []
        drift = self.max_abs_batch_drift
        if self.requires_batch_invariance and not drift == 0.0:
            out.append(f"not batch-invariant here: max |alone - batched| {drift:.3g} (per-row int8 must give "
                       "identical answers)")
        delta, cosine = self.max_abs_label_log_prob_delta, self.min_embedding_cosine
        if delta is not None and not delta <= gate.max_abs_label_log_prob:
            out.append(f"max |delta label log-prob| {delta:.3g} > {gate.max_abs_label_log_prob:g}")
        if cosine is not None and not cosine >= gate.min_embedding_cosine:
            out.append(f"embedding cosine {cosine:.6f} < {gate.min_embedding_cosine}")
        logit = self.max_abs_logit_delta
        if logit is not None and not logit <= gate.max_abs_logit:
            out.append(f"max |delta logit| {logit:.3g} > {gate.max_abs_logit:g}")
        if self.max_abs_score_delta is not None and not self.max_abs_score_delta <= gate.max_abs_score:
            out.append(f"max |delta score| {self.max_abs_score_delta:.3g} > {gate.max_abs_score:g}")
        if self.top1_agreement < gate.min_top1:
            out.append(f"top-1 agreement {self.top1_agreement:.3f} < {gate.min_top1}")
        if self.top5_overlap is not None and self.top5_overlap < gate.min_top5_overlap:
            out.append(f"top-5 overlap {self.top5_overlap:.3f} < {gate.min_top5_overlap}")
        if self.tokenizer_mismatches:
            out.append(f"{self.tokenizer_mismatches} probe(s) tokenize differently than at export")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures()

    def as_dict(self) -> dict:
        return asdict(self)


def _split_by_text(session, feed: dict, fetch: list[str]) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Runs ``feed``; returns, per row, every output that belongs to that text alone, and the
    row of each mask (row-major, as ``label_ids`` are ordered)."""
    out = dict(zip(fetch, session.run(fetch, feed)))
    rows = out[fmt.MASK_POSITIONS][:, 0]
    per_text = []
    for i, length in enumerate(feed[fmt.ATTENTION_MASK].sum(axis=1)):
        mine = {fmt.TARGET_SCORES: out[fmt.TARGET_SCORES][rows == i]}
        if fmt.LABEL_LOG_PROBS in out and out[fmt.LABEL_LOG_PROBS].size:
            mine[fmt.LABEL_LOG_PROBS] = out[fmt.LABEL_LOG_PROBS][rows == i]
        if fmt.LAST_HIDDEN_STATE in out:
            mine[fmt.LAST_HIDDEN_STATE] = out[fmt.LAST_HIDDEN_STATE][i, :length]
        per_text.append(mine)
    return per_text, rows


def batch_drift(session, golden: Golden) -> float:
    """Largest |difference| between each probe's outputs run alone and run in two padded batches
    (as stored, and reversed with 7 more padding positions); 0.0 means bit-identical (NaN if any
    output is NaN)."""
    outputs = {o.name for o in session.get_outputs()}
    feed = golden.feed(with_labels=fmt.LABEL_IDS in {i.name for i in session.get_inputs()})
    fetch = [fmt.MASK_POSITIONS, fmt.TARGET_SCORES] + [n for n in (fmt.LABEL_LOG_PROBS, fmt.LAST_HIDDEN_STATE)
                                                        if n in outputs]
    ids, attn, labels = feed[fmt.INPUT_IDS], feed[fmt.ATTENTION_MASK], feed.get(fmt.LABEL_IDS)
    lengths = attn.sum(axis=1)
    pad_id = int(ids[attn == 0][0]) if (attn == 0).any() else fmt.PAD_ID  # padded ids are masked out anyway
    batched, mask_rows = _split_by_text(session, feed, fetch)

    def subset(order: list[int], width: int) -> dict:
        sub = dict(feed)
        for name in (fmt.INPUT_IDS, fmt.ATTENTION_MASK, fmt.LANGS):
            if name in feed:
                block = np.full((len(order), width), pad_id if name == fmt.INPUT_IDS else 0, dtype=np.int64)
                for row, i in enumerate(order):
                    block[row, :lengths[i]] = feed[name][i, :lengths[i]]
                sub[name] = block
        if labels is not None and labels.size:
            sub[fmt.LABEL_IDS] = np.concatenate([labels[mask_rows == i] for i in order])
        return sub

    order = list(range(len(lengths)))[::-1]
    reversed_, _ = _split_by_text(session, subset(order, int(lengths.max()) + 7), fetch)
    drift = 0.0
    for i in range(len(lengths)):
        alone = _split_by_text(session, subset([i], int(lengths[i])), fetch)[0][0]
        for other in (batched[i], reversed_[order.index(i)]):
            for name, value in alone.items():
                diff = np.abs(other[name].astype(np.float64) - value)
                if np.isnan(diff).any():
                    return float("nan")
                drift = max(drift, float(diff.max(initial=0.0)))
    return drift


def run_golden(session, golden: Golden, precision: str, tokenizer=None, activations: str | None = None) -> CheckReport:
    """Runs the probes through ``session`` and compares with the golden answers.

    Args:
        session: An ``InferenceSession`` of the model directory's graph.
        golden: The probes and reference answers.
        precision: Selects the gate in :data:`GATES`.
        tokenizer: When given, the probe texts are re-tokenized and compared with the ids
            stored at export (a different tokenizer would shift every answer).
        activations: An int8 directory's activation scheme (:data:`xlm_onnx.format.INT8_ACTIVATIONS`):
            ``per-row`` fails the check unless every probe's outputs are bit-identical alone and
            batched (:func:`batch_drift`); the drift is reported for every directory.
    """
    from .pooling import pool

    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if fmt.LOGITS in outputs:  # a fine-tuned head: no masks, its logits are what is gated
        from .golden_logits import logits_figures

        return CheckReport(n_masks=0, max_abs_score_delta=None, top5_overlap=None, gate=asdict(GATES[precision]),
                           requires_batch_invariance=precision == "int8" and activations == fmt.INT8_PER_ROW,
                           **logits_figures(session, golden, tokenizer))
    feed = golden.feed(with_labels=fmt.LABEL_IDS in inputs)
    fetch = list(fmt.FILL_MASK_OUTPUTS) + [name for name in (fmt.LABEL_LOG_PROBS, fmt.LAST_HIDDEN_STATE)
                                           if name in outputs]
    scores, token_ids, _, target_scores, *extra = session.run(fetch, feed)
    got = dict(zip(fetch[4:], extra))
    delta = cosine = None
    if golden.labels is not None and fmt.LABEL_LOG_PROBS in got:
        ref = np.array(golden.label_log_probs, dtype=np.float64)
        delta = float(np.abs(got[fmt.LABEL_LOG_PROBS] - ref).max()) if ref.size else 0.0
    if golden.embeddings is not None and fmt.LAST_HIDDEN_STATE in got:
        ours = pool(got[fmt.LAST_HIDDEN_STATE], feed[fmt.ATTENTION_MASK], "mean", normalize=True)
        ref = np.array(golden.embeddings, dtype=np.float64)
        cosine = float(np.min(np.sum(ours * (ref / np.linalg.norm(ref, axis=1, keepdims=True)), axis=1)))
    ref_ids = np.array(golden.top_ids, dtype=np.int64)[:, :5]
    ref_scores = np.array(golden.top_scores, dtype=np.float64)[:, :5]
    n = ref_ids.shape[0]
    # Mask m's own five targets sit at columns 5m .. 5m+4 of target_scores.
    own = target_scores.reshape(n, n, 5)[np.arange(n), np.arange(n)] if n else np.zeros((0, 5))
    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(ref_ids.tolist(), token_ids[:, :5].tolist())]
    mismatches = 0
    if tokenizer is not None:
        mismatches = sum(tokenizer.encode(t) != ids for t, ids in zip(golden.texts, golden.token_ids))
    return CheckReport(
        n_sentences=len(golden.texts), n_masks=n,
        max_abs_score_delta=float(np.abs(own - ref_scores).max()) if n else 0.0,
        top1_agreement=float(np.mean(ref_ids[:, 0] == token_ids[:, 0])) if n else 1.0,
        top5_overlap=float(np.mean(overlap)) if n else 1.0,
        gate=asdict(GATES[precision]), tokenizer_mismatches=int(mismatches),
        max_abs_label_log_prob_delta=delta, min_embedding_cosine=cosine,
        max_abs_batch_drift=batch_drift(session, golden) if fmt.MASK_POSITIONS in outputs else None,
        requires_batch_invariance=precision == "int8" and activations == fmt.INT8_PER_ROW,
    )


def check_model(path: str | os.PathLike | None = None, provider="cpu", threads: int | None = None) -> CheckReport:
    """Re-runs a model directory's golden probes here (default: the embedded demo model).

    Raises:
        ModelFormatError: The directory is not loadable or has no ``golden.json``.
    """
    from .model import Model  # the shared loader: no task object is needed to run the probes

    model = Model.load(path, provider=provider, threads=threads)
    return run_golden(model.session, Golden.read(model.model_dir), model.manifest.precision, model.tokenizer,
                      activations=model.manifest.int8_activations)
