"""``huggingface_hub.InferenceClient`` ``token_classification`` and ``question_answering`` against
``POST /`` of a real ``xlm-onnx serve --task ...`` process, answers equal to the Python API's."""

from __future__ import annotations

import pytest

from serve_util import require_serve_extra

require_serve_extra()
huggingface_hub = pytest.importorskip("huggingface_hub")

from xlm_onnx.serve.process import ServerProcess  # noqa: E402
from xlm_onnx.tasks.question_answering import QuestionAnswerer  # noqa: E402
from xlm_onnx.tasks.token_classification import TokenClassifier  # noqa: E402

TEXT = "Toute personne a droit à la liberté d'opinion et d'expression, « sans » ingérence."
CONTEXT = " ".join(["Everyone has the right to life, liberty and security of person."] * 12)  # > 64 positions


def test_inference_client_token_classification(classifier_dir):
    model = classifier_dir("ner")
    with ServerProcess(model, ["--task", "token-classification"]) as server:
        client = huggingface_hub.InferenceClient(model=server.url, timeout=60)
        got = client.token_classification(TEXT, aggregation_strategy="average", ignore_labels=["O", "LOC"])
        none = client.token_classification(TEXT)
        long = client.token_classification(CONTEXT, stride=16, aggregation_strategy="first")  # > 64 positions
        with pytest.raises(huggingface_hub.errors.HfHubHTTPError, match="aggregation_strategy must be one of"):
            client.token_classification(TEXT, aggregation_strategy="longest")
    api = TokenClassifier.from_pretrained(model)
    want = api(TEXT, aggregation_strategy="average", ignore_labels=["O", "LOC"])
    assert [(e.entity_group, e.start, e.end, e.word) for e in got] == [
        (e["entity_group"], e["start"], e["end"], e["word"]) for e in want]
    assert [e.score for e in got] == pytest.approx([e["score"] for e in want], rel=1e-6)
    assert all(e.word == TEXT[e.start : e.end] for e in got + none)
    assert [e.entity for e in none] == [e["entity"] for e in api(TEXT)]
    want = api(CONTEXT, stride=16, aggregation_strategy="first")
    assert [(e.entity_group, e.start, e.end) for e in long] == [(e["entity_group"], e["start"], e["end"]) for e in want]


def test_inference_client_question_answering(classifier_dir):
    model = classifier_dir("qa")
    with ServerProcess(model, ["--task", "question-answering"]) as server:
        client = huggingface_hub.InferenceClient(model=server.url, timeout=60)
        one = client.question_answering(question="Who has the right to life?", context=CONTEXT, doc_stride=16)
        several = client.question_answering(question="Who?", context=CONTEXT, top_k=3, handle_impossible_answer=True,
                                            max_answer_len=5)
        with pytest.raises(huggingface_hub.errors.HfHubHTTPError, match="inputs.context is 20001 characters long"):
            client.question_answering(question="Who?", context="x" * 20001)  # --max-chars bounds contexts too
    api = QuestionAnswerer.from_pretrained(model)
    want = api({"question": "Who has the right to life?", "context": CONTEXT}, doc_stride=16)
    assert (one.answer, one.start, one.end) == (want["answer"], want["start"], want["end"])
    assert one.score == pytest.approx(want["score"], rel=1e-6)
    assert CONTEXT[one.start : one.end] == one.answer
    assert len(several) == 3 and all(CONTEXT[a.start : a.end] == a.answer for a in several)
