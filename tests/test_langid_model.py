"""The embedded language identifier: what `xlm-onnx classify` runs with no `--model`.

Its accuracy is measured in recipes/langid (held-out UDHR, beside lingua and py3langid) and shown
in its model card; here: that it is the package's classifier, passes its own export gate on this
CPU, answers the languages of a few plain sentences, and that the card's figures are the
evaluation's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xlm_onnx import TextClassifier, default_model_dir
from xlm_onnx import format as fmt

SENTENCES = {"fr": "Bonjour tout le monde", "de": "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
             "es": "Todos los seres humanos nacen libres e iguales.", "ru": "Все люди рождаются свободными.",
             "en": "Everyone has the right to life, liberty and security of person."}


def test_it_is_an_int8_sequence_classifier_over_xlm_codes():
    manifest = fmt.read_manifest(default_model_dir("langid_model"))
    assert manifest.head_kind == fmt.HEAD_KIND_SEQUENCE_CLASSIFICATION and manifest.precision == "int8"
    assert manifest.int8_activations == fmt.INT8_PER_ROW
    assert len(manifest.labels) == 91 and {"fr", "de", "zh", "sw", "zh_yue"} <= set(manifest.labels)


def test_cli_classify_answers_fr_with_no_model():
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "classify", "Bonjour tout le monde"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "fr"


def test_plain_sentences_and_batch_invariance():
    classifier = TextClassifier.from_pretrained()
    texts = list(SENTENCES.values())
    batched = classifier(texts, top_k=3)
    assert [answer[0]["label"] for answer in batched] == list(SENTENCES)
    assert [classifier(t, top_k=3) for t in texts] == batched  # per-row int8: identical alone


def test_its_golden_gate_passes_here():
    from xlm_onnx.golden import check_model

    report = check_model(default_model_dir("langid_model"))
    assert report.passed, report.failures()
    assert report.max_abs_batch_drift == 0.0


def test_the_card_shows_the_evaluation():
    from pathlib import Path

    results = json.loads((Path(__file__).resolve().parents[1] / "recipes/langid/results.json").read_text())
    card = (default_model_dir("langid_model") / "MODEL_CARD.md").read_text(encoding="utf-8")
    paragraphs = results["results"]["paragraph"]["xlm-onnx int8"]["all_three"]["accuracy"]
    assert f"{100 * paragraphs:.1f}" in card and "lingua" in card and "py3langid" in card


@pytest.mark.parametrize("name", ["default_model", "langid_model"])
def test_embedded_models_ship_their_licence(name):
    assert (default_model_dir(name) / "LICENSE-MPL-2.0").is_file()
