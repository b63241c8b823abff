"""Per-row int8 (the default): a text's answers are bit-identical alone and in any batch.

50 texts of mixed lengths (UDHR lines of up to 80 characters, 13-80 tokens, when ``../shared``
has them, else the tests' own sample texts) go through FillMask, Embedder and Scorer one at a time, then shuffled into batches
of 2, 7 and 32 texts, and each paired with the longest text (the most padding): every answer
must be *equal* (``==`` / ``np.array_equal``), on an int8 export of the tiny checkpoint and on the
embedded demo model. The per-tensor option is run through the same comparison and must differ,
so the comparison can fail; ``check`` reports both. The HTTP server and Ray front ends:
``test_server_batches_answer_like_one_at_a_time`` here and ``tests/test_ray.py``.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import UDHR
import xlm_onnx
from xlm_onnx import Embedder, FillMask, Model, Scorer, check_model
from xlm_onnx import format as fmt
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

N_TEXTS = 50
BATCH_SIZES = (2, 7, 32)
#: Scorer budgets (masked copies x length per run): other groupings of the copies of many texts.
SCORE_BUDGETS = (300, 16384)
#: Longest UDHR line used: PLL scoring runs one masked copy per token, so its cost grows with the
#: square of the length (50 lines of <= 250 characters took 40 s per pass on a loaded machine).
MAX_CHARS = 80


def invariance_texts(n: int = N_TEXTS) -> list[str]:
    """``n`` texts spread over lengths (UDHR lines of <= :data:`MAX_CHARS`, or SAMPLE_TEXTS)."""
    if UDHR.is_file():
        lines = sorted({json.loads(line)["text"] for line in UDHR.open(encoding="utf-8")}, key=len)
        lines = [t for t in lines if 10 <= len(t) <= MAX_CHARS]
    else:
        lines = sorted({t for t in SAMPLE_TEXTS if t.strip()}, key=len)
    picks = np.linspace(0, len(lines) - 1, min(n, len(lines))).round().astype(int)
    return [lines[i] for i in picks]


def masked(text: str) -> str:
    """``text`` with its middle word (or its middle, for scripts without spaces) masked."""
    words = text.split()
    if len(words) >= 2:
        words[len(words) // 2] = "<mask>"
        return " ".join(words)
    return f"{text[:len(text) // 2]} <mask> {text[len(text) // 2:]}"


def compositions(n: int):
    """(label, order of the n texts, batch size) of each batched run."""
    rng = np.random.default_rng(0)
    for size in BATCH_SIZES:
        yield f"shuffled, batches of {size}", rng.permutation(n).tolist(), size


def differences(model: Model, texts: list[str]) -> dict[str, list[str]]:
    """Runs each task alone and batched; returns, per task, the compositions that differed."""
    fill, embedder, scorer = FillMask.from_model(model), Embedder(model), Scorer(model)
    inputs = [masked(t) for t in texts]
    alone = {"fill": [fill(t) for t in inputs], "embed": [embedder.embed(t) for t in texts],
             "score": [scorer.score(t, per_token=True) for t in texts]}
    found: dict[str, list[str]] = {"fill": [], "embed": [], "score": []}
    for label, order, size in compositions(len(texts)):
        got = FillMask.from_model(model, batch_size=size)([inputs[i] for i in order])
        if any(got[j] != alone["fill"][i] for j, i in enumerate(order)):
            found["fill"].append(label)
        got = embedder.embed([texts[i] for i in order], batch_size=size)
        if any(not np.array_equal(got[j], alone["embed"][i]) for j, i in enumerate(order)):
            found["embed"].append(label)
    for budget in SCORE_BUDGETS:
        got = scorer.score(texts, per_token=True, max_tokens=budget)
        if got != alone["score"]:
            found["score"].append(f"copies of all texts, {budget} tokens per run")
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    pair_fill = FillMask.from_model(model, batch_size=2)
    if any(pair_fill([inputs[i], inputs[longest]])[0] != alone["fill"][i] for i in range(len(texts))):
        found["fill"].append("beside the longest text")
    if any(not np.array_equal(embedder.embed([texts[i], texts[longest]])[0], alone["embed"][i])
           for i in range(len(texts))):
        found["embed"].append("beside the longest text")
    return found


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return invariance_texts()


@pytest.fixture(scope="module")
def per_tensor_dir(tmp_path_factory, tiny_checkpoint):
    """The old scheme, through the CLI's ``--activations per-tensor``."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("exports") / "int8-per-tensor"
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "export", str(tiny_checkpoint), str(out), "--precision",
                           "int8", "--activations", "per-tensor", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def test_texts_have_mixed_lengths(texts):
    lengths = sorted(len(t) for t in texts)
    assert len(texts) == min(N_TEXTS, len(set(texts))) and lengths[-1] >= 3 * lengths[0]  # 21 to 80 characters


def test_int8_export_answers_identically_in_any_batch(int8_dir, texts):
    model = Model.load(int8_dir)
    assert model.manifest.int8_activations == fmt.INT8_PER_ROW  # the default
    assert differences(model, texts) == {"fill": [], "embed": [], "score": []}


def test_demo_model_answers_identically_in_any_batch(texts):
    model = Model.load()
    assert model.manifest.int8_activations == fmt.INT8_PER_ROW
    assert differences(model, texts) == {"fill": [], "embed": [], "score": []}


def test_per_tensor_option_still_exports_and_depends_on_the_batch(per_tensor_dir, texts):
    """The old scheme stays available, and the comparison above catches what it does."""
    model = Model.load(per_tensor_dir)
    assert model.manifest.quantization["activations"] == fmt.INT8_PER_TENSOR
    ops = {n.op_type for n in onnx.load(per_tensor_dir / fmt.MODEL_FILE, load_external_data=False).graph.node}
    assert {"QAttention", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"} <= ops
    found = differences(model, texts)
    assert all(found.values()), found


def test_check_reports_batch_invariance(int8_dir, per_tensor_dir, tmp_path):
    per_row, per_tensor = check_model(int8_dir), check_model(per_tensor_dir)
    assert per_row.passed and per_row.requires_batch_invariance and per_row.max_abs_batch_drift == 0.0
    assert per_tensor.passed and not per_tensor.requires_batch_invariance and per_tensor.max_abs_batch_drift > 1e-4
    # A directory that claims per-row but is not invariant fails the check, naming why.
    import shutil

    liar = tmp_path / "claims-per-row"
    shutil.copytree(per_tensor_dir, liar)
    manifest = json.loads((liar / fmt.MANIFEST_FILE).read_text())
    manifest["quantization"]["activations"] = fmt.INT8_PER_ROW
    (liar / fmt.MANIFEST_FILE).write_text(json.dumps(manifest))
    report = check_model(liar)
    assert not report.passed and report.failures()[0].startswith("not batch-invariant here: max |alone - batched|")


def test_manifest_without_activations_reads_as_per_tensor(per_tensor_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(per_tensor_dir, old)
    manifest = json.loads((old / fmt.MANIFEST_FILE).read_text())
    del manifest["quantization"]["activations"]
    (old / fmt.MANIFEST_FILE).write_text(json.dumps(manifest))
    assert fmt.read_manifest(old).int8_activations == fmt.INT8_PER_TENSOR
    assert fmt.read_manifest(old).validation["max_abs_batch_drift"] > 0  # measured at export, recorded


@pytest.mark.parametrize("which", ["int8_dir", "demo"])
def test_session_optimizer_keeps_the_row_scales(request, which, tmp_path):
    """At ORT_ENABLE_ALL no per-tensor op comes back, and every int8 GEMM is followed by its row scale."""
    from xlm_onnx import default_model_dir

    model_dir = request.getfixturevalue(which) if which != "demo" else default_model_dir()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(model_dir / fmt.MODEL_FILE), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(tmp_path / "optimized.onnx", load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert not {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "QAttention", "MatMulInteger"} & set(ops)
    readers = {i: n for n in graph.node for i in n.input}
    gemms = [n for n in graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert len(gemms) == sum(1 for n in onnx.load(model_dir / fmt.MODEL_FILE, load_external_data=False).graph.node
                             if n.op_type == "MatMulIntegerToFloat") > 0
    for gemm in gemms:
        assert len(gemm.input) < 7 or not gemm.input[6], gemm.name  # no bias: it would precede the row scale
        if gemm.input[2] == "per_row.one":  # exports before the row scale moved into the GEMM
            scale = readers[gemm.output[0]]
            assert scale.op_type == "Mul" and any(i.endswith(".scale") for i in scale.input), gemm.name
        else:
            assert gemm.input[2].endswith(".scale"), gemm.name  # A's scale: the row scales [.., 1]


@pytest.mark.parametrize("which", ["int8_dir", "demo"])
def test_server_batches_answer_like_one_at_a_time(request, which, texts):
    """Through ``xlm-onnx serve`` (a real process on 127.0.0.1): 150 concurrent requests share
    batches, and each answer equals the one-at-a-time answer of the Python API."""
    from serve_util import metric, require_serve_extra

    require_serve_extra()
    import httpx

    from xlm_onnx.serve.process import ServerProcess

    model_dir = request.getfixturevalue(which) if which != "demo" else None
    model = Model.load(model_dir)
    fill, embedder, scorer = FillMask.from_model(model), Embedder(model), Scorer(model)
    requests = []
    for text in texts:
        requests.append(("/fill-mask", {"inputs": masked(text)}, json.loads(json.dumps(fill(masked(text))))))
        requests.append(("/embed", {"inputs": [text]}, embedder.embed([text], normalize=True)))
        requests.append(("/score", {"inputs": text}, scorer.score(text)))
    barrier = threading.Barrier(len(requests))
    with ServerProcess(model_dir, ["--max-wait-ms", "200"]) as server, \
            httpx.Client(base_url=server.url, timeout=300, limits=httpx.Limits(max_connections=len(requests))) as client:
        def call(item):
            barrier.wait()
            return client.post(item[0], json=item[1])

        with ThreadPoolExecutor(len(requests)) as pool:
            responses = list(pool.map(call, requests))
        stats = client.get("/metrics").text
    for (route, _, expected), response in zip(requests, responses):
        assert response.status_code == 200, response.text
        got = response.json()
        if route == "/embed":
            assert np.array_equal(np.array(got, dtype=np.float32), expected), route
        else:
            assert got == expected, route
    batches, served = metric(stats, "xlm_onnx_batch_requests_count"), metric(stats, "xlm_onnx_batch_requests_sum")
    assert served == len(requests) and batches < served / 2, "requests did not share batches"


def test_convert_gives_a_per_tensor_directory_per_row_activations(per_tensor_dir, int8_dir, tmp_path):
    """``xlm_onnx_export.convert``: the exporter's publish, gate and version record on the converted graph;
    it refuses what it cannot convert before writing anything."""
    from xlm_onnx_export import ExportError
    from xlm_onnx_export.convert import convert_to_per_row

    out = tmp_path / "per-row"
    manifest = convert_to_per_row(per_tensor_dir, out)
    assert manifest.int8_activations == fmt.INT8_PER_ROW and fmt.read_manifest(out) == manifest
    assert manifest.validation["max_abs_batch_drift"] == 0  # the gate required batch invariance
    assert manifest.versions["xlm_onnx"] == xlm_onnx.__version__
    assert check_model(out).passed
    with pytest.raises(FileExistsError):
        convert_to_per_row(per_tensor_dir, out)
    with pytest.raises(ExportError, match="expected an int8 directory with per-tensor activations"):
        convert_to_per_row(int8_dir, tmp_path / "again")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["per-row"]  # nothing half-written
