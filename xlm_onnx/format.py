"""The exported model directory format: the one place both the exporter and the runtime read.

Like gguf-py's constants module, this file names every file, manifest field, graph input/output
and metadata key of an xlm-onnx model directory, and holds the only reader/writer of the manifest.
A directory looks like::

    model_dir/
      model.onnx            graph (weights in model.onnx.data)
      model.onnx.data       external tensor data; the tied embedding / LM head stored once
      vocab.json merges.txt tokenizer_config.json special_tokens_map.json
      xlm_onnx.json         the manifest (below)
      golden.json           export-time probes and the torch fp32 answers (``xlm-onnx check``)
      MODEL_CARD.md         for people: source, precision, gates passed, licence (not checked)

Bump :data:`FORMAT_VERSION` whenever a reader of the previous version would misread a directory.

Version history:

* 1 — fill-mask outputs only.
* 2 — one graph, three heads (manifest ``heads``): fill-mask, the encoder's ``last_hidden_state``
  (embeddings; pooled in numpy) and ``label_log_probs`` (log p(label) at each mask, for
  pseudo-log-likelihood scoring), with a fourth input ``label_ids``. A version-2 reader opens a
  version-1 directory for fill-mask only.

  Fine-tuned heads (optional fields, added within version 2): ``head_kind`` names the checkpoint's
  head (``masked_lm`` when absent), ``id2label`` and ``problem_type`` come from its config, and
  ``heads`` may name ``sequence_classification`` or ``multiple_choice`` (output ``logits``, no
  fill-mask outputs), or ``token_classification`` or ``question_answering`` (``logits`` per
  position: the tags, or start and end). A reader that predates them refuses such a directory, naming the head it
  does not know, and reads masked-LM directories as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import ModelFormatError

FORMAT_VERSION = 2
#: Versions this runtime reads.
READABLE_FORMAT_VERSIONS = (1, 2)

MODEL_FILE = "model.onnx"
MODEL_DATA_FILE = "model.onnx.data"
MANIFEST_FILE = "xlm_onnx.json"
VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
#: Read by the tokenizer when present (as transformers does); never written by the exporter.
ADDED_TOKENS_FILE = "added_tokens.json"
#: Probes and torch fp32 reference answers written at export; re-run by ``xlm-onnx check``.
#: Optional: directories exported before it existed lack it.
GOLDEN_FILE = "golden.json"
#: Tokenizer files copied from the checkpoint (the last two only when present there).
TOKENIZER_FILES = (VOCAB_FILE, MERGES_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_FILE)
REQUIRED_TOKENIZER_FILES = (VOCAB_FILE, MERGES_FILE)

# XLM's special-token layout: the only definition (tokenizer defaults, fixture vocabularies, the
# demo recipe and the exporter's checks read it from here). Ids are XLM's: ``<s>`` 0, ``</s>`` 1,
# ``<pad>`` 2, ``<unk>`` 3, ``<special0..9>`` 4..13, and the mask is ``<special1>`` (5).
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, UNK_TOKEN = "<s>", "</s>", "<pad>", "<unk>"
XLM_EXTRA_SPECIAL_TOKENS = tuple(f"<special{i}>" for i in range(10))
MASK_TOKEN = XLM_EXTRA_SPECIAL_TOKENS[1]
#: Tokens at ids 0..13 of every XLM vocabulary, in id order.
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, UNK_TOKEN, *XLM_EXTRA_SPECIAL_TOKENS)
BOS_ID, EOS_ID, PAD_ID, UNK_ID, MASK_ID = (SPECIAL_TOKENS.index(t) for t in (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN,
                                                                             UNK_TOKEN, MASK_TOKEN))
#: ``transformers.XLMTokenizer.__init__``'s defaults (it has no ``eos_token`` parameter, so that
#: attribute stays None; ``</s>`` is both ``sep`` and ``cls``).
XLM_TOKEN_DEFAULTS = {"bos_token": BOS_TOKEN, "unk_token": UNK_TOKEN, "sep_token": EOS_TOKEN,
                      "pad_token": PAD_TOKEN, "cls_token": EOS_TOKEN, "mask_token": MASK_TOKEN}

PRECISIONS = ("fp32", "fp16", "int8")
#: Storage of the tied embedding / LM head table in an int8 export (manifest ``quantization``).
TIED_EMBEDDING_STORAGE = ("int8", "fp16", "fp32")
#: int8 weight bits -> the largest |q| of any int8 weight (encoder MatMuls, QAttention, tied table).
#: 7 bits is ORT's ``reduce_range`` range [-64, 64].
INT8_WEIGHT_MAX = {7: 64, 8: 127}
#: The largest |q| that no onnxruntime CPU kernel can saturate. ORT's u8s8 GEMM on AVX2 and on
#: AVX-512 without VNNI multiplies uint8 activations by int8 weights with ``vpmaddubsw``, which adds
#: each *pair* of products into a saturating int16: 2 * 255 * |q| must stay <= 32767, so |q| <= 64.
#: VNNI/AMX (``vpdpbusd``, int32 accumulation), ARM64 and the Linux SSE kernel (int16 widening +
#: ``pmaddwd``) are exact at any |q|.
INT8_SATURATION_SAFE_MAX = 64
#: ``weight_max`` of int8 manifests written before the field existed (full-range weights).
LEGACY_INT8_WEIGHT_MAX = 127
#: How an int8 export quantizes activations (manifest ``quantization.activations``):
#: ``per-row``: one symmetric scale per token row, computed from that row alone, so a text's
#: scores, embedding and PLL are bit-identical alone or in any batch (for a given directory and
#: CPU class); ``per-tensor``: onnxruntime's dynamic quantization, one scale per tensor, i.e. per
#: batch, so answers move with the neighbours and the padding.
INT8_PER_ROW, INT8_PER_TENSOR = "per-row", "per-tensor"
INT8_ACTIVATIONS = (INT8_PER_ROW, INT8_PER_TENSOR)
#: ``activations`` of int8 manifests written before the field existed.
LEGACY_INT8_ACTIVATIONS = INT8_PER_TENSOR

# Graph inputs.
INPUT_IDS = "input_ids"  # int64 [batch, seq]
ATTENTION_MASK = "attention_mask"  # int64 [batch, seq], 1 = token, 0 = right padding
LANGS = "langs"  # int64 [batch, seq]; only for checkpoints with language embeddings
TOP_K = "top_k"  # int64 [1]
TARGET_IDS = "target_ids"  # int64 [n_targets]; may be empty
LABEL_IDS = "label_ids"  # int64 [n_masks] (v2): one label per mask, row-major order; or empty
# Graph outputs.
SCORES = "scores"  # float32 [n_masks, k], softmax probabilities, descending
TOKEN_IDS = "token_ids"  # int64 [n_masks, k]
MASK_POSITIONS = "mask_positions"  # int64 [n_masks, 2]: (batch row, position), row-major order
TARGET_SCORES = "target_scores"  # float32 [n_masks, n_targets]
LAST_HIDDEN_STATE = "last_hidden_state"  # float32 [batch, seq, dim] (v2), the encoder's output
LABEL_LOG_PROBS = "label_log_probs"  # float32 [len(label_ids)] (v2): log p(label_ids[m]) at mask m
LOGITS = "logits"  # float32 [batch, n] (a fine-tuned head's logits per row) or [batch, seq, n] (per token)

#: The four fill-mask outputs (a version-1 graph has only these).
FILL_MASK_OUTPUTS = (SCORES, TOKEN_IDS, MASK_POSITIONS, TARGET_SCORES)
#: Outputs of a version-2 graph, in order.
OUTPUT_NAMES = (*FILL_MASK_OUTPUTS, LAST_HIDDEN_STATE, LABEL_LOG_PROBS)

# Heads (manifest ``heads``): what a graph can answer, each with the outputs it needs.
HEAD_FILL_MASK = "fill_mask"
HEAD_HIDDEN = "last_hidden_state"
HEAD_LABEL_LOG_PROBS = "label_log_probs"
#: ``logits`` [batch, num_labels]: XLMForSequenceClassification's sequence summary of each row.
HEAD_SEQUENCE_CLASSIFICATION = "sequence_classification"
#: ``logits`` [rows, 1]: XLMForMultipleChoice's score of each row (one row per choice).
HEAD_MULTIPLE_CHOICE = "multiple_choice"
#: ``logits`` [batch, seq, num_labels]: XLMForTokenClassification's tag scores of each position.
HEAD_TOKEN_CLASSIFICATION = "token_classification"
#: ``logits`` [batch, seq, 2]: XLMForQuestionAnsweringSimple's (start, end) logits of each position.
HEAD_QUESTION_ANSWERING = "question_answering"
HEAD_OUTPUTS = {
    HEAD_FILL_MASK: FILL_MASK_OUTPUTS,
    HEAD_HIDDEN: (LAST_HIDDEN_STATE,),
    HEAD_LABEL_LOG_PROBS: (MASK_POSITIONS, LABEL_LOG_PROBS),
    HEAD_SEQUENCE_CLASSIFICATION: (LOGITS,),
    HEAD_MULTIPLE_CHOICE: (LOGITS,),
    HEAD_TOKEN_CLASSIFICATION: (LOGITS,),
    HEAD_QUESTION_ANSWERING: (LOGITS,),
}
#: Heads of every version-2 export of a masked LM.
HEADS = (HEAD_FILL_MASK, HEAD_HIDDEN, HEAD_LABEL_LOG_PROBS)
#: Every head this runtime can read.
KNOWN_HEADS = tuple(HEAD_OUTPUTS)

# What the source checkpoint's head is (manifest ``head_kind``): the exporter picks it from the
# config's ``architectures`` (``xlm_onnx_export.heads``); older manifests are masked LMs.
HEAD_KIND_MASKED_LM = "masked_lm"
HEAD_KIND_SEQUENCE_CLASSIFICATION = "sequence_classification"
HEAD_KIND_MULTIPLE_CHOICE = "multiple_choice"
HEAD_KIND_TOKEN_CLASSIFICATION = "token_classification"
HEAD_KIND_QUESTION_ANSWERING = "question_answering"
#: ``problem_type`` values of a sequence-classification config (``None``: decided by the labels'
#: count, as transformers does).
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")
#: Heads of a version-1 directory (its manifest has no ``heads`` field).
V1_HEADS = (HEAD_FILL_MASK,)

#: Prefix of the manifest fields mirrored into ONNX ``metadata_props``.
METADATA_PREFIX = "xlm_onnx."
#: Manifest fields mirrored into ``metadata_props`` (so `model.onnx` alone says what it is).
METADATA_FIELDS = ("format_version", "precision", "opset", "mask_token_id", "pad_token_id", "vocab_size")


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Contents of ``xlm_onnx.json``.

    Attributes:
        format_version: Directory format version (see :data:`FORMAT_VERSION`).
        precision: One of :data:`PRECISIONS`.
        opset: ONNX default-domain opset of ``model.onnx``.
        inputs: Graph input names, in order.
        outputs: Graph output names, in order.
        mask_token_id: Id of the mask token (``<special1>`` for XLM).
        pad_token_id: Id used for right padding.
        vocab_size: Rows of the (tied) embedding / LM head.
        max_positions: Longest sequence the position embedding covers, specials included.
        lang2id: Language code -> id, for checkpoints with language embeddings (else empty).
        source: ``config`` (the checkpoint's config.json as a dict) and ``config_sha256``.
        versions: Package versions used to export (onnx, onnxruntime, torch, transformers, ...).
        validation: Figures of the export-time parity check against torch.
        fusion: Counts of fused ORT contrib ops (empty when not optimized).
        files: File name -> ``{"size": bytes, "sha256": hex}`` for every other file.
        heads: What the graph answers (:data:`HEADS`); version-1 manifests lack the field and
            have :data:`V1_HEADS`.
        quantization: int8 only: ``weights``, ``per_channel``, ``tied_embedding`` (how the
            embedding / LM head table is stored: ``int8``, ``fp16`` or ``fp32``), ``weight_bits``,
            ``weight_max`` (the largest |q| of any int8 weight; see
            :data:`INT8_SATURATION_SAFE_MAX`) and ``activations`` (:data:`INT8_ACTIVATIONS`);
            empty otherwise. Optional on read (manifests written before it existed lack it; their
            int8 table is int8, their weights full range, their activations per tensor; manifests
            without ``activations`` are per tensor).
        head_kind: The checkpoint's head (``HEAD_KIND_*``); ``masked_lm`` for older manifests.
        id2label: Class index (a str, as JSON keys are) -> label, from the checkpoint's config
            (fine-tuned heads; empty for a masked LM).
        problem_type: The config's ``problem_type`` (:data:`PROBLEM_TYPES` or ``None``).
    """

    format_version: int
    precision: str
    opset: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mask_token_id: int
    pad_token_id: int
    vocab_size: int
    max_positions: int
    lang2id: dict[str, int]
    source: dict[str, Any]
    versions: dict[str, str]
    validation: dict[str, Any]
    fusion: dict[str, int]
    files: dict[str, dict[str, Any]]
    quantization: dict[str, Any] = dataclasses.field(default_factory=dict)
    heads: tuple[str, ...] = V1_HEADS
    head_kind: str = HEAD_KIND_MASKED_LM
    id2label: dict[str, str] = dataclasses.field(default_factory=dict)
    problem_type: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The class labels in index order (empty for a masked LM)."""
        return tuple(self.id2label[key] for key in sorted(self.id2label, key=int))

    @property
    def uses_langs(self) -> bool:
        """Whether the graph takes a ``langs`` input (language embeddings)."""
        return LANGS in self.inputs

    @property
    def int8_weight_max(self) -> int | None:
        """Largest |q| of the int8 weights (``None`` unless int8); full range for older exports."""
        if self.precision != "int8":
            return None
        return int(self.quantization.get("weight_max", LEGACY_INT8_WEIGHT_MAX))

    @property
    def int8_activations(self) -> str | None:
        """How activations are quantized (:data:`INT8_ACTIVATIONS`; ``None`` unless int8)."""
        if self.precision != "int8":
            return None
        return str(self.quantization.get("activations", LEGACY_INT8_ACTIVATIONS))

    def require_head(self, head: str, task: str) -> None:
        """Raises unless the graph has ``head``, naming the task that needs it.

        Raises:
            ModelFormatError: The checkpoint had another head (a classifier has no fill-mask; a
                masked LM no classifier), or the directory predates the head (a version-1
                export: re-export).
        """
        if head not in self.heads and self.format_version == FORMAT_VERSION:
            raise ModelFormatError(
                f"{task} needs a model with the {head!r} head; this model directory is a {self.head_kind} export "
                f"(heads {', '.join(self.heads)}): pass one exported from a checkpoint with that head (--model DIR)"
            )
        if head not in self.heads:
            raise ModelFormatError(
                f"{task} needs the graph's {head!r} output, which this model directory (format_version "
                f"{self.format_version}, heads {', '.join(self.heads)}) lacks; re-export the checkpoint with "
                f"this xlm-onnx (`xlm-onnx export`, format_version {FORMAT_VERSION}) to get it"
            )

    def to_json(self) -> str:
        """Serialises the manifest (stable key order, readable)."""
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False, sort_keys=False)

    def metadata_props(self) -> dict[str, str]:
        """The key fields as ONNX ``metadata_props`` (string values)."""
        return {METADATA_PREFIX + name: str(getattr(self, name)) for name in METADATA_FIELDS}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_files(model_dir: str | os.PathLike, names: list[str]) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of each named file in ``model_dir``, for :attr:`Manifest.files`."""
    root = Path(model_dir)
    return {name: {"size": (root / name).stat().st_size, "sha256": sha256_file(root / name)} for name in names}


def write_manifest(model_dir: str | os.PathLike, manifest: Manifest) -> Path:
    """Writes ``xlm_onnx.json`` into ``model_dir`` and returns its path."""
    path = Path(model_dir) / MANIFEST_FILE
    path.write_text(manifest.to_json() + "\n", encoding="utf-8")
    return path


def read_manifest(model_dir: str | os.PathLike) -> Manifest:
    """Reads and checks ``xlm_onnx.json``.

    Raises:
        ModelFormatError: The manifest is missing, not JSON, lacks a field, or has a
            ``format_version`` this runtime cannot read.
    """
    path = Path(model_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ModelFormatError(f"{path}: manifest not found; is {model_dir} an xlm-onnx model directory?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object")
    version = data.get("format_version")
    if version not in READABLE_FORMAT_VERSIONS:
        readable = ", ".join(map(str, READABLE_FORMAT_VERSIONS))
        raise ModelFormatError(
            f"{path}: format_version {version!r} is not supported; this xlm-onnx reads version(s) {readable}"
            " (upgrade xlm-onnx, or re-export the model with this version)"
        )
    fields = {f.name for f in dataclasses.fields(Manifest)}
    required = {f.name for f in dataclasses.fields(Manifest)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - data.keys())
    if missing:
        raise ModelFormatError(f"{path}: missing field(s) {', '.join(missing)}")
    values = {name: data[name] for name in fields if name in data}
    if version >= 2 and "heads" not in data:
        raise ModelFormatError(f"{path}: missing field heads (required from format_version 2)")
    values["inputs"] = tuple(values["inputs"])
    values["outputs"] = tuple(values["outputs"])
    values["heads"] = tuple(values.get("heads", V1_HEADS))
    unknown = sorted(set(values["heads"]) - set(KNOWN_HEADS))
    if unknown:
        raise ModelFormatError(f"{path}: unknown head(s) {', '.join(unknown)}; this xlm-onnx knows "
                               f"{', '.join(KNOWN_HEADS)} (upgrade xlm-onnx to read this directory)")
    if values["precision"] not in PRECISIONS:
        raise ModelFormatError(f"{path}: unknown precision {values['precision']!r}; expected one of {PRECISIONS}")
    return Manifest(**values)


def verify_files(model_dir: str | os.PathLike, manifest: Manifest, checksums: bool = True) -> None:
    """Checks that every file the manifest lists is present, complete and (optionally) unchanged.

    Sizes are always compared (this catches a half-copied directory for free); SHA-256 is
    compared when ``checksums`` is true (about 1 s per GB on one core).

    Raises:
        ModelFormatError: Naming the first file that is missing, truncated or modified.
    """
    root = Path(model_dir)
    for name, expected in manifest.files.items():
        path = root / name
        if not path.is_file():
            raise ModelFormatError(f"{path}: missing (listed in {MANIFEST_FILE})")
        size = path.stat().st_size
        if size != expected["size"]:
            raise ModelFormatError(
                f"{path}: size {size} bytes, manifest says {expected['size']} (truncated or partly copied?)"
            )
    if checksums:
        verify_checksums(model_dir, manifest)


def verify_checksums(model_dir: str | os.PathLike, manifest: Manifest) -> None:
    """Compares every listed file's SHA-256 with the manifest.

    Raises:
        ModelFormatError: Naming the first file whose content changed.
    """
    root = Path(model_dir)
    for name, expected in manifest.files.items():
        if sha256_file(root / name) != expected["sha256"]:
            raise ModelFormatError(f"{root / name}: SHA-256 differs from {MANIFEST_FILE} (file modified or corrupt)")
