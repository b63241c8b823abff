"""The exporter tells a checkpoint's head from its ``architectures``: classifiers export with their
head and label map; an unsupported head is refused with one line, before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from xlm_onnx import Model
from xlm_onnx import format as fmt

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _rewrite_config(checkpoint, tmp_path, **changes):
    import shutil

    out = tmp_path / "edited"
    shutil.copytree(checkpoint, out)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, **changes}))
    return out


@pytest.mark.parametrize("name", ["single", "choice"])
def test_classifier_manifest_and_card(classifier_dir, name):
    directory = classifier_dir(name)
    manifest = fmt.read_manifest(directory)
    kind = {"single": fmt.HEAD_KIND_SEQUENCE_CLASSIFICATION, "choice": fmt.HEAD_KIND_MULTIPLE_CHOICE}[name]
    assert manifest.head_kind == kind
    assert manifest.heads == (kind, fmt.HEAD_HIDDEN) and manifest.outputs == (fmt.LOGITS, fmt.LAST_HIDDEN_STATE)
    assert fmt.TOP_K not in manifest.inputs and fmt.LABEL_IDS not in manifest.inputs
    if name == "single":
        assert manifest.labels == ("negative", "neutral", "positive")
        assert manifest.problem_type == "single_label_classification"
    card = (directory / "MODEL_CARD.md").read_text()
    assert "## Labels" in card and f"| 0 | {manifest.labels[0]} |" in card
    assert "max abs(Δ logit) of the fine-tuned head" in card


def test_classifier_logits_match_torch_on_new_texts(classifier_checkpoint, classifier_dir):
    """Beyond the golden probes: other texts, one padded batch, against the unmodified model."""
    import torch
    from transformers import AutoTokenizer, XLMForSequenceClassification

    checkpoint = classifier_checkpoint("single")
    texts = ["Un petit texte.", "A somewhat longer English sentence with more words in it.", "Hallo Welt"]
    hf = XLMForSequenceClassification.from_pretrained(checkpoint).eval()
    batch = AutoTokenizer.from_pretrained(checkpoint)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = hf(**batch).logits.numpy()
    model = Model.load(classifier_dir("single"))
    from xlm_onnx.batching import Batch

    ids, mask = batch["input_ids"].numpy(), batch["attention_mask"].numpy()
    (logits,) = model.run([fmt.LOGITS], Batch(ids, mask))
    np.testing.assert_allclose(logits, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_classifier_precisions_pass_their_gates_batch_invariant_int8(classifier_dir, precision):
    manifest = fmt.read_manifest(classifier_dir("single", precision))
    validation = manifest.validation
    assert validation["max_abs_logit_delta"] <= validation["gate"]["max_abs_logit"]
    if precision == "int8":
        assert validation["requires_batch_invariance"] and validation["max_abs_batch_drift"] == 0.0


def test_check_command_gates_classifier(classifier_dir):
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "check", str(classifier_dir("single"))],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "max |delta logit|" in proc.stdout and proc.stdout.endswith("passed\n")


@pytest.mark.parametrize("changes, message", [
    ({"architectures": ["XLMForQuestionAnswering"]},
     "architectures ['XLMForQuestionAnswering']: xlm-onnx exports the heads XLMWithLMHeadModel, "
     "XLMForSequenceClassification, XLMForMultipleChoice, XLMForTokenClassification, "
     "XLMForQuestionAnsweringSimple; this checkpoint's head is not one of them"),
    ({"architectures": ["XLMForSequenceClassification", "XLMForMultipleChoice"]}, "is not one of them"),
    ({"summary_type": "last"}, "summary_type 'last' is not supported (only 'first'"),
    ({"summary_activation": "softplus"}, "summary_activation 'softplus' is not supported"),
    ({"problem_type": "ranking"}, "problem_type 'ranking' is not one of"),
])
def test_unsupported_heads_are_refused_in_one_line(classifier_checkpoint, tmp_path, changes, message):
    checkpoint = _rewrite_config(classifier_checkpoint("single"), tmp_path, **changes)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "export", str(checkpoint), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("xlm-onnx: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


def test_config_without_architectures_is_a_masked_lm():
    from xlm_onnx_export.heads import head_spec

    assert head_spec({"model_type": "xlm"}, "config.json").kind == fmt.HEAD_KIND_MASKED_LM


def test_older_readers_refuse_classifier_heads_by_name(classifier_dir, tmp_path, monkeypatch):
    """A runtime that predates a head names it instead of misreading the graph."""
    monkeypatch.setattr(fmt, "KNOWN_HEADS", fmt.HEADS)
    from xlm_onnx.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match="unknown head.s. sequence_classification"):
        fmt.read_manifest(classifier_dir("single"))


def test_masked_lm_tasks_refuse_a_classifier(classifier_dir):
    from xlm_onnx import FillMask
    from xlm_onnx.errors import ModelFormatError

    with pytest.raises(ModelFormatError, match="fill-mask needs a model with the 'fill_mask' head; this model directory is a sequence_classification export"):
        FillMask(Model.load(classifier_dir("single")))
