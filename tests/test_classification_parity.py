"""Classifiers against transformers' own pipelines on the same texts: text-classification on tiny
random heads of every problem_type, zero-shot on an NLI-labelled head, multiple choice against the
model's forward; alone, in mixed batches, truncated. Scores within 1e-5 (fp32; achieved: 3e-7),
same labels in the same order; int8 answers identical alone and batched."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xlm_onnx import Model
from xlm_onnx.tasks import run_all
from xlm_onnx.tasks.multiple_choice import MultipleChoice
from xlm_onnx.tasks.text_classification import TextClassifier
from xlm_onnx.tasks.zero_shot import ZeroShotClassifier

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOL = 1e-5
TEXTS = ["Bonjour tout le monde", "All human beings are born free and equal in dignity and rights.",
         "Alle Menschen sind frei", "Todos los seres humanos nacen libres e iguales en dignidad y derechos."]
#: Over the fixtures' 64 positions: cut by truncation=True (pairs: the longer side first).
LONG = " ".join(TEXTS * 3)
#: Pairs over the limit on either side, and on both with every parity of what is left to cut
#: once the lengths are even (transformers' longest_first takes the odd id from the second text).
PAIRS = [{"text": TEXTS[0], "text_pair": TEXTS[1]}, {"text": LONG, "text_pair": TEXTS[2]},
         {"text": TEXTS[3], "text_pair": LONG}, {"text": LONG, "text_pair": LONG + " Hallo"},
         {"text": LONG + " Hallo Welt", "text_pair": LONG}, {"text": TEXTS[1] + TEXTS[3], "text_pair": TEXTS[3] + "!"},
         {"text": TEXTS[1] + TEXTS[3], "text_pair": TEXTS[3] + TEXTS[1] + "."}]


def assert_same(ours, theirs, path="answer"):
    """Same structure, keys, strings and order; floats within :data:`TOL`."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), (path, ours, theirs)
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), (path, ours, theirs)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert abs(ours - theirs) <= TOL, (path, ours, theirs)
    else:
        assert ours == theirs, (path, ours, theirs)


@pytest.fixture(scope="module")
def hf_pipelines(classifier_checkpoint):
    from transformers import pipeline

    made = {}

    def get(task: str, name: str):
        if (task, name) not in made:
            path = str(classifier_checkpoint(name))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made[task, name] = pipeline(task, model=path, tokenizer=path, device="cpu")
        return made[task, name]

    return get


CALLS = [({}, TEXTS[0]), ({}, TEXTS), ({}, PAIRS[0]), ({"top_k": None}, TEXTS[1]), ({"top_k": 2}, TEXTS),
         ({"top_k": None}, PAIRS[0]), ({"top_k": 1}, [TEXTS[0], PAIRS[0], TEXTS[2]]),
         ({"function_to_apply": "sigmoid", "top_k": None}, TEXTS), ({"function_to_apply": "none"}, TEXTS),
         ({"function_to_apply": "softmax", "top_k": None}, TEXTS[2]),
         ({"truncation": True, "top_k": None}, [LONG, *PAIRS]), ({"truncation": True}, LONG)]


@pytest.mark.parametrize("name", ["single", "multi", "regression", "default"])
def test_text_classification_matches_the_pipeline(classifier_dir, hf_pipelines, name):
    hf = hf_pipelines("text-classification", name)
    ours = TextClassifier(Model.load(classifier_dir(name)))
    for options, inputs in CALLS:
        assert_same(ours(inputs, **options), hf(inputs, **options), f"{name} {options} {inputs!r:.40}")


@pytest.mark.parametrize("name", ["single", "multi"])
def test_mixed_batches_answer_as_alone(classifier_dir, name):
    """Requests with different options share runs (one key): each answer is the one it gets alone."""
    ours = TextClassifier(Model.load(classifier_dir(name)))
    requests = [(inputs, options) for options, inputs in CALLS]
    alone = [ours(inputs, **options) for inputs, options in requests]
    together = run_all([ours.prepare(inputs, **options) for inputs, options in requests], max_rows=5)
    assert_same(together, alone)


ZERO_SHOT = [
    (TEXTS[0], {"candidate_labels": ["politics", "sport", "cuisine"]}),
    (TEXTS, {"candidate_labels": "politics, sport,cuisine,  ,art"}),
    (TEXTS[1], {"candidate_labels": ["politics", "sport", "cuisine"], "multi_label": True}),
    (TEXTS[2], {"candidate_labels": ["sport"]}),
    ([LONG, TEXTS[3]], {"candidate_labels": ["droits", "liberté"], "hypothesis_template": "Ce texte parle de {}."}),
]


@pytest.mark.parametrize("name", ["nli", "single"])
def test_zero_shot_matches_the_pipeline(classifier_dir, hf_pipelines, name):
    """``nli``: entailment is class 1 (found by name); ``single``: no entailment label (the last class)."""
    hf = hf_pipelines("zero-shot-classification", name)
    ours = ZeroShotClassifier(Model.load(classifier_dir(name)))
    assert ours.entailment == {"nli": 1, "single": -1}[name]
    for inputs, options in ZERO_SHOT:
        assert_same(ours(inputs, **options), hf(inputs, **options), f"{options}")


def test_zero_shot_is_one_batched_run(classifier_dir):
    ours = ZeroShotClassifier(Model.load(classifier_dir("nli")))
    prepared = ours.prepare(TEXTS, candidate_labels=["a", "b", "c"])
    runs = []
    run_all([prepared], on_run=runs.append)
    assert [r.rows for r in runs] == [len(TEXTS) * 3]


def test_multiple_choice_matches_the_model(classifier_checkpoint, classifier_dir):
    import torch
    from transformers import AutoTokenizer, XLMForMultipleChoice

    path = classifier_checkpoint("choice")
    questions = [{"question": TEXTS[0], "choices": [TEXTS[1], TEXTS[2], "Non."]},
                 {"question": LONG, "choices": ["Oui.", TEXTS[3]]}]
    hf, tokenizer = XLMForMultipleChoice.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    ours = MultipleChoice(Model.load(classifier_dir("choice")))
    answers = ours(questions, truncation=True)
    for item, answer in zip(questions, answers):
        n = len(item["choices"])
        batch = tokenizer([item["question"]] * n, item["choices"], padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            logits = hf(**{k: v.unsqueeze(0) for k, v in batch.items()}).logits[0].numpy()
        probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        order = sorted(range(n), key=lambda i: -probs[i])
        assert [a["index"] for a in answer] == order
        assert [a["choice"] for a in answer] == [item["choices"][i] for i in order]
        np.testing.assert_allclose([a["score"] for a in answer], probs[order], atol=TOL, rtol=0)
    assert_same(ours(questions[0]), answers[0])


def test_int8_answers_identical_alone_and_batched(classifier_dir):
    model = Model.load(classifier_dir("single", "int8"))
    ours, zero = TextClassifier(model), ZeroShotClassifier(model)
    texts = [*TEXTS, LONG[:200], *PAIRS[:1]]
    batched = ours(texts, top_k=None, truncation=True)
    assert [ours(t, top_k=None, truncation=True) for t in texts] == batched
    labels = ["politics", "sport"]
    assert [zero(t, candidate_labels=labels) for t in TEXTS] == zero(TEXTS, candidate_labels=labels)


@pytest.mark.parametrize("call, error, message", [
    (lambda c: c(TEXTS[0], top_k=0), ValueError, "top_k must be a positive int or None"),
    (lambda c: c(TEXTS[0], function_to_apply="relu"), ValueError, "function_to_apply must be one of"),
    (lambda c: c({"txt": "a"}), TypeError, "a dict with 'text'"),
    (lambda c: c(LONG), Exception, "pass truncation=True"),
    (lambda c: c([TEXTS[0], {"text": LONG, "text_pair": LONG}]), Exception, r"inputs\[1\] is \d+ tokens"),
])
def test_text_classification_bad_input(classifier_dir, call, error, message):
    with pytest.raises(error, match=message):
        call(TextClassifier(Model.load(classifier_dir("single"))))


@pytest.mark.parametrize("options, message", [
    ({}, "candidate_labels is required"), ({"candidate_labels": " , "}, "candidate_labels is empty"),
    ({"candidate_labels": ["a"], "hypothesis_template": "no slot"}, "has no {}"),
    ({"candidate_labels": ["a"], "hypothesis_template": "{x}"}, "cannot be formatted"),
    ({"candidate_labels": ["a"], "hypothesis_template": LONG + " {}"}, "only the text may be cut"),
])
def test_zero_shot_bad_input(classifier_dir, options, message):
    with pytest.raises((TypeError, ValueError), match=message):
        ZeroShotClassifier(Model.load(classifier_dir("nli")))(TEXTS[0], **options)
