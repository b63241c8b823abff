"""The peers benchmark's driver end to end on the tiny checkpoint (structure only: no timing assertions).

The peers' own venvs (optimum-onnx, OpenVINO) are pointed at an empty folder here, so they must
come out as rows that say they are not installed and how to install them, never dropped. A run
with the venvs present is slow (exports and imports of torch in each) and marked ``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

PEERS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "peers"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"_peers_{name}", PEERS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, checkpoint: Path, onnx_dir: Path, systems: str, peers_root: Path, rounds: int = 2):
    """``bench.py`` on the tiny checkpoint, 14- and 20-token texts; peers' exports under ``tmp_path``."""
    bench = _module("bench")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(checkpoint), "--onnx", f"fp32={onnx_dir}", "--systems", systems,
            "--tokens", "14,20", "--batched", "3x10,2x16", "--threads", "1", "--warmup", "0", "--repeat", "2", "--rounds", str(rounds),
            "--peers-root", str(peers_root), "--work-dir", str(tmp_path / "work"), "--json", str(out / "r.json"), "--markdown", str(out / "r.md")]
    status = bench.main(argv)
    return status, json.loads((out / "r.json").read_text()), (out / "r.md").read_text()


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_checkpoint, fp32_dir):
    tmp = tmp_path_factory.mktemp("peers")
    return _run(tmp, tiny_checkpoint, fp32_dir, "optimum-ort-int8,openvino-int8-nncf", tmp / "no-venvs")


def test_every_system_is_a_row_with_status(run):
    status, data, md = run
    assert status == 0
    systems = data["systems"]
    assert list(systems) == ["xlm-onnx-fp32", "optimum-ort-int8", "openvino-int8-nncf"]
    for name in ("optimum-ort-int8", "openvino-int8-nncf"):
        row = systems[name]
        assert row["status"] == "not installed" and "benchmarks/peers/envs.py" in row["note"], row
        assert f"| {name} | - |" in md and row["note"] in md
    for name in ("xlm-onnx-fp32",):
        row = systems[name]
        assert row["status"] == "ok", row
        assert len(row["rounds"]) == 2
        s = row["summary"]
        for key in ("e2e_ms", "forward_ms", "encoder_ms"):
            assert set(s[key]) == {"14", "20"} and all(v > 0 for v in s[key].values())
            assert s[key.replace("_ms", "_samples")] == {"14": 4, "20": 4}  # 2 rounds x 2 calls
        assert {t["n_tokens"] for t in s["tokenizer"].values()} == {14, 20}
        assert set(s["encoder_batched_ms"]) == {"3x10", "2x16"} and s["encoder_batched_samples"]["3x10"] == 4
        assert s["peak_rss_mb"] > 0 and s["load_s"] > 0
    assert systems["xlm-onnx-fp32"]["summary"]["versions"]["xlm-onnx"]


def test_header_names_cpu_class_and_load(run):
    _, data, md = run
    from xlm_onnx.cpu import cpu_info

    h = data["header"]
    assert h["isa_class"] == cpu_info().isa_class and h["cpu_isa"]["flags"] == list(cpu_info().flags)
    assert len(h["load_avg_before"]) == 3 and len(h["load_avg_after"]) == 3
    assert f"class `{h['isa_class']}`" in md and "Load average" in md
    assert [i["tokens"] for i in data["inputs"]] == [14, 20]


def test_batched_encoder_table(run):
    """Every system is a row of the sentences/s table; the batches are different texts of exactly
    the asked length (the encoder sees no mask)."""
    _, data, md = run
    assert [(b["batch"], b["tokens"]) for b in data["batched"]] == [(3, 10), (2, 16)]
    assert "| system | 3x10 | 2x16 |" in md
    row = next(line for line in md.splitlines() if line.startswith("| xlm-onnx-fp32 |") and "(" in line)
    p50 = data["systems"]["xlm-onnx-fp32"]["summary"]["encoder_batched_ms"]["3x10"]
    assert row.split(" | ")[1].startswith(f"{3 / (p50 / 1e3):,.1f} (")
    assert "| optimum-ort-int8 | - | - |" in md


def test_batches_are_distinct_texts_of_the_asked_length(tiny_checkpoint):
    batches = _module("bench").build_batches(tiny_checkpoint, [(4, 12)])
    ids = batches[0]["ids"]
    assert len(ids) == 4 and {len(row) for row in ids} == {12} and len({tuple(r) for r in ids}) == 4


def test_bad_batched_argument_is_refused(tmp_path, tiny_checkpoint, fp32_dir):
    with pytest.raises(SystemExit, match="BATCHxTOKENS"):
        _module("bench").parse_batched("32by64")


def test_table_rerenders_from_json(run):
    _, data, md = run
    rows = [line for line in md.splitlines() if line.startswith("| xlm-onnx-fp32 |") and line.endswith("| ok |")]
    assert len(rows) == 1
    assert _module("report").markdown(data) + "\n" == md  # the JSON alone re-renders the table


def test_speedup_column_against_the_pipeline(run):
    """hf-fp32 is the baseline column: a copy of the xlm-onnx row with every pipeline sample
    4x longer, named hf-fp32, must show 4.00x for xlm-onnx and 1.00x for itself."""
    import copy

    _, data, _ = run
    data = copy.deepcopy(data)
    hf = copy.deepcopy(data["systems"]["xlm-onnx-fp32"])
    for r in hf["rounds"]:
        r["e2e_ms"] = {n: [4 * t for t in ts] for n, ts in r["e2e_ms"].items()}
    data["systems"] = {"hf-fp32": hf, **data["systems"]}
    report = _module("report")
    report.summarize(data)
    md = report.markdown(data)
    latency_rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| ") and line.count(" | ") == 8]
    cells = {row[0][2:]: row[4] for row in latency_rows}
    assert cells["hf-fp32"] == "1.00x / 1.00x" and cells["xlm-onnx-fp32"] == "4.00x / 4.00x"
    assert cells["optimum-ort-int8"] == "-"


def test_bad_onnx_argument_is_refused(tmp_path, tiny_checkpoint):
    with pytest.raises(SystemExit, match="LABEL=DIR"):
        _run(tmp_path, tiny_checkpoint, tmp_path / "missing", "hf-fp32", tmp_path / "v")


def test_venv_states(tmp_path):
    envs = _module("envs")
    assert envs.state(tmp_path, "openvino")[0] == "absent"
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / envs.FAILED).write_text("...\nERROR: No matching distribution found for x==1\n")
    status, why = envs.state(tmp_path, "openvino")
    assert status == "failed" and "No matching distribution" in why
    (tmp_path / "openvino" / envs.MARKER).write_text(json.dumps({"lock": "old"}))
    assert envs.state(tmp_path, "openvino")[0] == "stale"


@pytest.mark.slow
def test_with_peer_venvs(tmp_path, tiny_checkpoint, fp32_dir):
    """Each installed peer exports, quantizes and runs the tiny checkpoint (skips without venvs)."""
    envs = _module("envs")
    root = envs.default_root()
    ready = [n for n in envs.ENVS if envs.state(root, n)[0] == "ready"]
    if not ready:
        pytest.skip(f"no peer venvs under {root}: python benchmarks/peers/envs.py")
    bench = _module("bench")
    names = [n for n, (_, venv, _) in bench.PEERS.items() if venv in ready or venv is None]
    status, data, _ = _run(tmp_path, tiny_checkpoint, fp32_dir, ",".join(names), root, rounds=1)
    for name in names:
        assert data["systems"][name]["status"] == "ok", data["systems"][name]


def test_text_classification_scenario(tmp_path, classifier_checkpoint, classifier_dir):
    """``--task text-classification``: xlm-onnx's TextClassifier end to end per text and per batch of
    texts, an answer from the checkpoint's labels, the ratio column against itself, the peers as rows."""
    bench, report = _module("bench"), _module("report")
    out = tmp_path / "r.json"
    argv = ["--task", "text-classification", "--checkpoint", str(classifier_checkpoint("single")),
            "--onnx", f"fp32={classifier_dir('single')}", "--systems", "optimum-ort-int8", "--tokens", "14,20",
            "--batched", "3x10", "--threads", "1", "--warmup", "0", "--repeat", "2", "--rounds", "1",
            "--peers-root", str(tmp_path / "no-venvs"), "--work-dir", str(tmp_path / "work"), "--json", str(out)]
    assert bench.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["header"]["task"] == "text-classification"
    s = data["systems"]["xlm-onnx-fp32"]["summary"]
    assert set(s["e2e_ms"]) == {"14", "20"} and set(s["e2e_batched_ms"]) == {"3x10"}
    assert s["e2e_batched_samples"] == {"3x10": 2} and "encoder_ms" not in s
    labels = {"negative", "neutral", "positive"}
    assert {s["answers"][n]["label"] for n in ("14", "20")} <= labels
    assert len(s["answers"]["3x10"]) == 3 and {a["label"] for a in s["answers"]["3x10"]} <= labels
    assert data["systems"]["optimum-ort-int8"]["status"] == "not installed"
    md = report.markdown(data)
    assert "| system | 14 tokens | 20 tokens | batch 3x10 | x xlm-onnx |" in md
    row = next(line for line in md.splitlines() if line.startswith("| xlm-onnx-fp32 |"))
    assert "| 1.00 / 1.00 / 1.00 |" in row and row.endswith("| ok |")
    assert "| optimum-ort-int8 | - | - | - | - |" in md
