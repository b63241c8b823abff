"""``MODEL_CARD.md``: what an exported directory is, for the people who receive it.

Written by ``xlm-onnx export`` next to the manifest, from the manifest itself (source config,
precision, int8 scheme, validation figures and gates), ``golden.json`` (the CPU the validation ran
on) and the checkpoint's own ``README.md`` (the licence it declares). The card is prose for
people: the runtime never reads it and the manifest does not checksum it, so it can be edited.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from xlm_onnx import format as fmt

MODEL_CARD_FILE = "MODEL_CARD.md"
#: XLM-100 (``FacebookAI/xlm-mlm-100-1280``): its shape, and the licence of its released weights.
XLM100_SHAPE = {"n_layers": 16, "emb_dim": 1280, "n_words": 200000}
XLM100_LICENCE = "cc-by-nc-4.0"

_GATES = (  # (validation figure, gate key, label, comparison, format)
    ("top1_agreement", "min_top1", "top-1 agreement with torch fp32", ">=", "{:.1%}"),
    ("top5_overlap", "min_top5_overlap", "top-5 overlap with torch fp32", ">=", "{:.1%}"),
    ("max_abs_score_delta", "max_abs_score", "max abs(Δ score) on torch's top-5", "<=", "{:.2g}"),
    ("max_abs_label_log_prob_delta", "max_abs_label_log_prob", "max abs(Δ log p) of the masked tokens", "<=",
     "{:.2g}"),
    ("min_embedding_cosine", "min_embedding_cosine", "min cosine of mean-pooled embeddings", ">=", "{:.5g}"),
    ("max_abs_logit_delta", "max_abs_logit", "max abs(Δ logit) of the fine-tuned head", "<=", "{:.2g}"),
)
#: What each head kind is, and the commands that use it (the card's intro and "Use" section).
_KINDS = {
    fmt.HEAD_KIND_MASKED_LM: ("An XLM masked language model", "fill-mask, sentence embeddings and "
                              "pseudo-log-likelihood scoring", 'fill-mask --model {name} "Paris est la <mask> de la France."'),
    fmt.HEAD_KIND_SEQUENCE_CLASSIFICATION: ("A fine-tuned XLM sequence classifier (`XLMForSequenceClassification`)",
                                            "text classification (and zero-shot classification when a label is "
                                            "an entailment label), sentence embeddings",
                                            'classify --model {name} "Bonjour tout le monde"'),
    fmt.HEAD_KIND_MULTIPLE_CHOICE: ("A fine-tuned XLM multiple-choice model (`XLMForMultipleChoice`)",
                                    "multiple choice (one score per choice), sentence embeddings",
                                    "multiple-choice --model {name} --help"),
    fmt.HEAD_KIND_TOKEN_CLASSIFICATION: ("A fine-tuned XLM token classifier (`XLMForTokenClassification`)",
                                         "named entities / tags with character offsets into the original text, "
                                         "sentence embeddings", 'ner --model {name} "Ada Lovelace lived in London."'),
    fmt.HEAD_KIND_QUESTION_ANSWERING: ("A fine-tuned XLM extractive QA model (`XLMForQuestionAnsweringSimple`)",
                                       "extractive question answering over contexts of any length (stride windows), "
                                       "sentence embeddings", 'qa --model {name} --context "..." "Who?"'),
}
_QUANTIZATION = {"weights": "weights", "per_channel": "per-channel scales", "weight_bits": "weight bits",
                 "weight_max": "largest abs(q) of any int8 weight", "tied_embedding": "tied embedding / LM head stored as"}


def source_name(checkpoint_dir: str | Path) -> str:
    """``org/name (revision abc123def456)`` for a Hugging Face cache snapshot, else the directory's name.

    Only the name: a card travels with the model, and the exporting machine's paths mean nothing
    (and may say too much) elsewhere.
    """
    path = Path(checkpoint_dir)
    parts = path.resolve().parts
    for i, part in enumerate(parts[:-2]):
        if part.startswith("models--") and parts[i + 1] == "snapshots":
            return f"{part[len('models--'):].replace('--', '/')} (revision {parts[i + 2][:12]})"
    return path.name


def declared_licence(checkpoint_dir: str | Path | None) -> str | None:
    """The ``license:`` of the checkpoint's ``README.md`` front matter (Hugging Face model cards)."""
    readme = Path(checkpoint_dir) / "README.md" if checkpoint_dir is not None else None
    if readme is None or not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8", errors="replace")
    front = re.match(r"---\s*\n(.*?)\n---", text, re.DOTALL)
    found = re.search(r"^license:\s*['\"]?([\w.+-]+)", front.group(1), re.MULTILINE) if front else None
    return found.group(1) if found else None


def licence_text(manifest: fmt.Manifest, declared: str | None) -> str:
    """What the card says about the weights' licence, from the checkpoint's word or XLM-100's shape."""
    config = manifest.source.get("config", {})
    xlm100 = all(config.get(k) == v for k, v in XLM100_SHAPE.items())
    if declared:
        text = f"**{declared.upper()}**, as the source checkpoint's `README.md` declares."
    elif xlm100:
        text = (f"**{XLM100_LICENCE.upper()}** (non-commercial): the licence of the released XLM-100 weights "
                "(`FacebookAI/xlm-mlm-100-1280`), whose shape this checkpoint has. A fine-tune of them carries "
                "its own terms on top.")
    else:
        return ("**Not stated**: the source checkpoint has no `README.md` with a `license:` field. The weights "
                "keep the licence of their source; find it before sharing this directory.")
    return text + " It binds this directory's weights whatever the licence of xlm-onnx's code (Apache-2.0)."


def _cpu_line(model_dir: Path) -> str:
    try:
        made_on = json.loads((model_dir / fmt.GOLDEN_FILE).read_text(encoding="utf-8")).get("made_on") or {}
    except (OSError, ValueError):
        made_on = {}
    if not made_on:
        return "CPU not recorded."
    return (f"CPU: {made_on.get('model', '?')}, class **{made_on.get('isa_class', '?')}** "
            f"(flags {' '.join(made_on.get('flags', [])) or 'none recorded'}).")


def _precision_lines(manifest: fmt.Manifest) -> list[str]:
    lines = [f"- Precision: **{manifest.precision}**" + {
        "fp32": " (float32 throughout).",
        "fp16": " (float16 weights and activations, float32 graph inputs and outputs; meant for GPUs).",
        "int8": " (int8 weights, dynamically quantized activations; for CPUs)."}[manifest.precision]]
    for key, value in manifest.quantization.items():
        lines.append(f"  - {_QUANTIZATION.get(key, key)}: `{value}`")
    if manifest.int8_weight_max is not None:
        safe = manifest.int8_weight_max <= fmt.INT8_SATURATION_SAFE_MAX
        lines.append("  - " + ("Every int8 weight is within abs(q) <= 64, so every CPU class computes the same "
                               "answers." if safe else "Full-range int8 weights: exact on VNNI, AMX and ARM64 "
                               "CPUs only; AVX2 and AVX-512-without-VNNI CPUs saturate (run `xlm-onnx check` "
                               "there)."))
    fused = ", ".join(f"{n} {op}" for op, n in manifest.fusion.items()) or "none (exported with --no-optimize)"
    lines += [f"- Fused operators: {fused}.",
              f"- Heads: {', '.join(manifest.heads)}; ONNX opset {manifest.opset}; format version "
              f"{manifest.format_version}.",
              "- Exported with " + ", ".join(f"{k} {v}" for k, v in manifest.versions.items()) + "."]
    return lines


def _validation_lines(manifest: fmt.Manifest, model_dir: Path) -> list[str]:
    val = manifest.validation
    if not val:
        return ["Not validated."]
    gate = val.get("gate", {})
    masks = f" ({val['n_masks']} masks)" if val.get("n_masks") else ""
    lines = [f"Every gate below passed before the directory was published: the exported graph against "
             f"the torch fp32 reference on {val.get('n_sentences', '?')} probe sentences{masks}, "
             f"on the exporting machine. {_cpu_line(model_dir)}", "",
             "| check | measured | gate |", "|---|---:|---:|"]
    for figure, key, label, op, form in _GATES:
        if val.get(figure) is not None and key in gate:
            lines.append(f"| {label} | {form.format(val[figure])} | {op} {form.format(gate[key])} |")
    if "tokenizer_mismatches" in val:
        lines.append(f"| probes tokenized differently from transformers | {val['tokenizer_mismatches']} | 0 |")
    drift = val.get("max_abs_batch_drift")
    if drift is not None:
        lines.append(f"| max abs(alone - batched) of any probe's outputs | {drift:.2g} | "
                     f"{'0' if val.get('requires_batch_invariance') else 'reported'} |")
    return lines + ["", "`xlm-onnx check DIR` re-runs these gates on the machine it runs on (from `golden.json`)."]


def _label_lines(manifest: fmt.Manifest) -> list[str]:
    """The label map of a fine-tuned classifier (nothing for a masked LM)."""
    if not manifest.id2label:
        return []
    intro = "Index and label, as `id2label` of the source config:"
    if manifest.head_kind == fmt.HEAD_KIND_QUESTION_ANSWERING:
        intro = "The two values the head gives each position (no labels of the source config):"
    elif manifest.head_kind != fmt.HEAD_KIND_TOKEN_CLASSIFICATION:  # problem_type: sequence-level heads only
        problem = manifest.problem_type or "not set (transformers decides by the labels' count)"
        intro = f"`problem_type`: {problem}. {intro}"
    lines = ["## Labels", "", intro, "", "| index | label |", "|---:|---|"]
    return lines + [f"| {i} | {label} |" for i, label in enumerate(manifest.labels)] + [""]


def render_model_card(manifest: fmt.Manifest, model_dir: str | Path, checkpoint_dir: str | Path | None = None,
                      name: str | None = None) -> str:
    """The card's Markdown.

    Args:
        manifest: The directory's manifest (what the card describes).
        model_dir: The directory; its ``golden.json`` names the CPU the validation ran on.
        checkpoint_dir: The source checkpoint, for its name and declared licence (``None``: unknown).
        name: Title (default: the directory's name).
    """
    model_dir = Path(model_dir)
    name = name or model_dir.name
    config = manifest.source.get("config", {})
    source = source_name(checkpoint_dir) if checkpoint_dir is not None else "unknown"
    langs = ", ".join(sorted(manifest.lang2id)) or "none (one embedding for every language, like XLM-100)"
    what, answers, use = _KINDS[manifest.head_kind]
    lines = [f"# {name}", "",
             f"{what} exported to ONNX by xlm-onnx {manifest.versions.get('xlm_onnx', '')}: "
             f"{answers} with numpy and onnxruntime, without torch. This card is written from the manifest (`xlm_onnx.json`), which is what the "
             "runtime reads and checks; the card itself is not checked.", "",
             "## Source", "",
             f"- Checkpoint: `{source}`; weights file `{manifest.source.get('weights_file', '?')}`; `config.json` "
             f"SHA-256 `{manifest.source.get('config_sha256', '?')}`.",
             f"- Architecture: XLM, {config.get('n_layers', '?')} layers, hidden {config.get('emb_dim', '?')}, "
             f"{config.get('n_heads', '?')} heads, vocabulary {manifest.vocab_size:,}, at most "
             f"{manifest.max_positions} positions with specials; language embeddings: {langs}.", "",
             *_label_lines(manifest),
             "## Precision", "", *_precision_lines(manifest), "",
             "## Validation", "", *_validation_lines(manifest, model_dir), "",
             "## Licence of the weights", "", licence_text(manifest, declared_licence(checkpoint_dir)), "",
             "## Use", "", "```bash",
             "xlm-onnx " + use.format(name=name),
             f"xlm-onnx serve {name}", "```", ""]
    return "\n".join(lines)


def write_model_card(model_dir: str | Path, manifest: fmt.Manifest, checkpoint_dir: str | Path | None = None,
                     name: str | None = None) -> Path:
    """Writes ``MODEL_CARD.md`` into ``model_dir`` (see :func:`render_model_card`); returns its path."""
    path = Path(model_dir) / MODEL_CARD_FILE
    path.write_text(render_model_card(manifest, model_dir, checkpoint_dir, name), encoding="utf-8")
    return path
