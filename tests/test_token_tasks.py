"""Token classification and extractive QA, end to end on tiny random heads, against transformers.

* the export of ``XLMForTokenClassification`` / ``XLMForQuestionAnsweringSimple`` passes its gates
  and carries its label map;
* ``token-classification`` with ``none``/``simple`` equals transformers' pipeline (labels, scores,
  token indices), with ``start``/``end``/``word`` into the original text where the pipeline has none;
* the QA graph's start/end logits equal the torch head's on question/context pairs;
* a context longer than the model's 64 positions is answered through stride windows, every
  answer is ``context[start:end]``, and the best span is the brute-force best over windows;
* alone vs batched: identical answers in int8 (per-row activations).
"""

from __future__ import annotations

import json

import numpy as np
import pytest



TEXTS = ["Ada Lovelace lived in London.", "Toute personne a droit à la liberté d'opinion et d'expression.",
         "«\u00a0Bon\u00a0» — it's 1\u00a0000 ok…", "Hello"]
CONTEXT = ("Everyone has the right to life, liberty and security of person. No one shall be held in slavery "
           "or servitude; slavery and the slave trade shall be prohibited in all their forms. Everyone has the "
           "right to recognition everywhere as a person before the law.")


def _tasks(classifier_dir, name, precision="fp32"):
    from xlm_onnx.tasks.question_answering import QuestionAnswerer
    from xlm_onnx.tasks.token_classification import TokenClassifier

    cls = TokenClassifier if name == "ner" else QuestionAnswerer
    return cls.from_pretrained(classifier_dir(name, precision))


@pytest.mark.parametrize("name", ["ner", "qa"])
def test_manifest_labels(classifier_dir, name):
    from xlm_onnx import format as fmt

    manifest = fmt.read_manifest(classifier_dir(name))
    if name == "ner":
        assert manifest.head_kind == fmt.HEAD_KIND_TOKEN_CLASSIFICATION
        assert manifest.labels == ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
    else:
        assert manifest.head_kind == fmt.HEAD_KIND_QUESTION_ANSWERING
        assert manifest.labels == ("start", "end")


@pytest.mark.parametrize("strategy", ["none", "simple"])
def test_token_classification_matches_transformers_pipeline(classifier_checkpoint, classifier_dir, strategy):
    import warnings

    from transformers import XLMForTokenClassification, XLMTokenizer, pipeline

    ckpt = classifier_checkpoint("ner")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = pipeline("token-classification", model=XLMForTokenClassification.from_pretrained(ckpt),
                      tokenizer=XLMTokenizer.from_pretrained(ckpt), aggregation_strategy=strategy, ignore_labels=[])
        refs = [hf(t) for t in TEXTS]
    ours = _tasks(classifier_dir, "ner")(TEXTS, aggregation_strategy=strategy, ignore_labels=[])
    key = "entity" if strategy == "none" else "entity_group"
    for text, got, ref in zip(TEXTS, ours, refs):
        assert [e[key] for e in got] == [e[key] for e in ref]
        np.testing.assert_allclose([e["score"] for e in got], [float(e["score"]) for e in ref], atol=1e-5)
        if strategy == "none":
            assert [e["index"] for e in got] == [e["index"] for e in ref]
        assert all(e["word"] == text[e["start"] : e["end"]] for e in got)
        starts = [e["start"] for e in got]
        assert starts == sorted(starts)


def test_token_classification_word_strategies_and_ignore(classifier_dir):
    task = _tasks(classifier_dir, "ner")
    text = TEXTS[1]
    every = task(text, aggregation_strategy="first", ignore_labels=[])
    words = [e["word"] for e in every]  # first/average/max: whole words only, never a piece of one
    enc = task.model.tokenizer.encode_with_offsets(text)
    spans = {(s, e) for s, e in enc.words}
    for strategy in ("first", "average", "max"):
        for entity in task(text, aggregation_strategy=strategy, ignore_labels=[]):
            assert any(s == entity["start"] for s, _ in spans) and any(e == entity["end"] for _, e in spans)
    assert "".join(words).replace(" ", "") == text.replace(" ", "")
    kept = task(text, aggregation_strategy="first")
    assert all(e["entity_group"] != "O" for e in kept)


def test_qa_logits_match_torch(classifier_checkpoint, classifier_dir):
    import torch
    from transformers import XLMForQuestionAnsweringSimple

    from xlm_onnx.tasks.base import run_all

    model = XLMForQuestionAnsweringSimple.from_pretrained(classifier_checkpoint("qa")).eval()
    task = _tasks(classifier_dir, "qa")
    items = [{"question": "Who has rights?", "context": CONTEXT}, {"question": "What?", "context": "Nothing at all."}]
    prepared = task.prepare(items, max_seq_len=48, doc_stride=16)
    rows = [u.ids for u in prepared.units]
    assert len(rows) > 2  # the first context needs several windows at 48 positions
    batch = task.pad(rows)
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(batch.input_ids), attention_mask=torch.from_numpy(batch.attention_mask))
    ours = task.run_batch(prepared.units, prepared.key)
    for i, (start, end) in enumerate(ours):
        n = len(rows[i])
        np.testing.assert_allclose(start, out.start_logits[i, :n].numpy(), atol=1e-4)
        np.testing.assert_allclose(end, out.end_logits[i, :n].numpy(), atol=1e-4)
    assert len(run_all([prepared])[0]) == 2


@pytest.mark.parametrize("top_k", [1, 4])
def test_qa_long_context_through_windows(classifier_dir, top_k):
    task = _tasks(classifier_dir, "qa")
    item = {"question": "Who has the right to life?", "context": CONTEXT * 2}
    assert len(task.model.tokenizer.encode(item["context"])) > task.model.manifest.max_positions
    got = task(item, top_k=top_k, doc_stride=8, handle_impossible_answer=True)
    answers = [got] if top_k == 1 else got
    assert len(answers) == top_k
    for a in answers:
        assert item["context"][a["start"] : a["end"]] == a["answer"]
    # The best answer is the brute-force best span over every window (masked softmaxes per window).
    prepared = task.prepare(item, doc_stride=8)
    _, [(_, enc, wins)] = prepared.state
    assert len(wins) > 2 and wins[1].first == wins[0].first + wins[0].count - 8
    best = (-1.0, None)
    for (s_l, e_l), w in zip(task.run_batch(prepared.units, prepared.key), wins):
        keep = np.zeros(len(s_l), bool)
        keep[0] = True
        keep[w.offset : w.offset + w.count] = True
        ps, pe = (np.exp(x - x.max()) / np.exp(x - x.max()).sum() for x in
                  (np.where(keep, s_l.astype(np.float64), -1e4), np.where(keep, e_l.astype(np.float64), -1e4)))
        for i in range(w.offset, w.offset + w.count):
            for j in range(i, min(i + 15, w.offset + w.count)):
                if ps[i] * pe[j] > best[0]:
                    best = (ps[i] * pe[j], (i - w.offset + w.first, j - w.offset + w.first))
    first, last = best[1]
    top = task(item, doc_stride=8)
    assert (top["start"], top["end"]) == (enc.words[enc.word_ids[first]][0], enc.words[enc.word_ids[last]][1])
    assert top["score"] == pytest.approx(best[0], rel=1e-6)


def test_alone_vs_batched_identical_int8(classifier_dir):
    ner = _tasks(classifier_dir, "ner", "int8")
    together = ner(TEXTS, aggregation_strategy="average", ignore_labels=[])
    assert [ner(t, aggregation_strategy="average", ignore_labels=[]) for t in TEXTS] == together
    qa = _tasks(classifier_dir, "qa", "int8")
    items = [{"question": "Who?", "context": c} for c in (CONTEXT * 2, "Ada Lovelace lived in London.", CONTEXT)]
    assert [qa(i, top_k=3) for i in items] == qa(items, top_k=3)


def test_bad_qa_input(classifier_dir):
    from xlm_onnx.errors import InputError

    qa = _tasks(classifier_dir, "qa")
    with pytest.raises(TypeError, match="question"):
        qa({"question": 3, "context": "x"})
    with pytest.raises(InputError, match="context is empty"):
        qa({"question": "Who?", "context": " "})
    with pytest.raises(InputError, match="no context fits"):
        qa({"question": "word " * 60, "context": "x"}, doc_stride=8)
    with pytest.raises(ValueError, match="top_k"):
        qa({"question": "Who?", "context": "x"}, top_k=0)


def _records(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_cli_ner_and_qa(classifier_dir, capsys):
    from xlm_onnx.cli import main

    ner, qa = str(classifier_dir("ner")), str(classifier_dir("qa"))
    assert main(["ner", TEXTS[1], TEXTS[0], "--model", ner, "--json", "--aggregation", "max",
                 "--ignore-label", "O", "--ignore-label", "LOC"]) == 0
    records = _records(capsys)
    assert [r["text"] for r in records] == [TEXTS[1], TEXTS[0]]
    for r in records:
        assert all(e["word"] == r["text"][e["start"] : e["end"]] and e["entity_group"] not in ("O", "LOC")
                   for e in r["entities"])
    assert main(["qa", "Who has rights?", "What?", "--context", CONTEXT, "--model", qa, "--json", "--top-k", "2"]) == 0
    for r in _records(capsys):
        assert len(r["answers"]) == 2
        assert all(CONTEXT[a["start"] : a["end"]] == a["answer"] for a in r["answers"])
    assert main(["qa", "Who?", "--model", qa]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no context was given" in err


def test_ray_callables(classifier_dir):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("ray")
    from xlm_onnx.ray import QuestionAnsweringBatch, TokenClassificationBatch
    from xlm_onnx.tasks.token_classification import TokenClassifier

    ner = TokenClassificationBatch(classifier_dir("ner"), aggregation_strategy="simple", ignore_labels=[])
    out = ner(pa.table({"id": [1, 2, 3], "text": [TEXTS[0], None, TEXTS[1]]}))
    assert out.column("id").to_pylist() == [1, 2, 3]
    rows = out.column("entities").to_pylist()
    errors = out.column("error").to_pylist()
    assert rows[1] is None and errors[0] is None and "text" in errors[1]
    api = TokenClassifier.from_pretrained(classifier_dir("ner"))
    want = api([TEXTS[0], TEXTS[1]], aggregation_strategy="simple", ignore_labels=[])
    for got, ref in zip([rows[0], rows[2]], want):
        assert [{k: v for k, v in e.items() if v is not None} for e in got] == ref
    qa = QuestionAnsweringBatch(classifier_dir("qa"), context=CONTEXT, top_k=2)
    answers = qa(pa.table({"text": ["Who?", "What is it?"]})).column("answers").to_pylist()
    assert all(len(a) == 2 and all(CONTEXT[x["start"] : x["end"]] == x["answer"] for x in a) for a in answers)


def test_cli_export_reports_the_logit_gate(classifier_checkpoint, tmp_path, capsys):
    from xlm_onnx.cli import main

    assert main(["export", str(classifier_checkpoint("qa")), str(tmp_path / "qa"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "max |delta logit|" in out and "top-1 1.000" in out


def test_token_classification_long_text_through_stride_windows(classifier_dir):
    from xlm_onnx.errors import InputError
    from xlm_onnx.tasks.token_entities import merge_overlapping

    ner = _tasks(classifier_dir, "ner")
    text = CONTEXT * 2
    with pytest.raises(InputError, match="stride=N reads it in windows"):
        ner(text)
    prepared = ner.prepare(text, stride=16, aggregation_strategy="first", ignore_labels=[])
    (enc, wins), = prepared.state[2]
    assert len(wins) > 2 and wins[-1].first + wins[-1].count == len(enc.ids)
    got = ner.answer(prepared)
    assert all(e["word"] == text[e["start"] : e["end"]] for e in got)
    assert all(a["end"] <= b["start"] for a, b in zip(got, got[1:]))  # overlaps merged away
    assert got[0]["start"] == 0 and got[-1]["end"] == len(text.rstrip())
    # A text that fits is one window: stride changes nothing.
    assert ner(TEXTS[1], stride=16, aggregation_strategy="max") == ner(TEXTS[1], aggregation_strategy="max")
    # The merge keeps the longer of two overlapping entities, then the higher score.
    a, b, c = ({"start": 0, "end": 5, "score": 0.5}, {"start": 2, "end": 9, "score": 0.1},
               {"start": 2, "end": 9, "score": 0.3})
    assert merge_overlapping([a, b, c]) == [c]
    with pytest.raises(ValueError, match="stride"):
        ner(text, stride=62)
