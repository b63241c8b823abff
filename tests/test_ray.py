"""``xlm_onnx.ray`` and ``xlm-onnx bulk`` on a real local Ray cluster (``ray.init(num_cpus=2)``, once per module).

Differential: every answered row equals the Python API on that text (the tiny fp32 export, where
batch shapes move scores by float rounding only); bad rows carry the API's own message; ids and
other columns survive; killing an actor mid-job loses and duplicates no row. Without the [ray]
extra these tests skip, except under ``CI=true`` where they fail (``.ci/run`` installs ``.[test]``,
which includes ``[ray]``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

try:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - the [ray] extra is in [test]
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"the [ray] extra is missing in CI ({exc.name}); .ci/run installs .[test]") from None
    pytest.skip(f"needs the [ray] extra ({exc.name})", allow_module_level=True)

from waiting import wait_until
from xlm_onnx import Embedder, FillMask, Model, Scorer
from xlm_onnx.ray import BulkTask, EmbedBatch, FillMaskBatch, ScoreBatch, row_message
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

CLI = [sys.executable, "-m", "xlm_onnx"]
TOO_LONG = " ".join(["word"] * 600) + " <mask>"  # > 512 positions
#: An error-level line of Ray's C++ core ("[date time E pid tid] file.cc:N: ...") or of Python logging.
ERROR_LINE = re.compile(r"\[[\d\-: ,]+ E \d+ \d+\]|\bERROR\b")
# Tolerances from what is achieved on the fp32 tiny model with other batch shapes (~1e-7 seen).
ATOL = 1e-5


def _masked(text: str) -> str:
    words = text.split()
    words[min(2, len(words) - 1)] = "<mask>"
    return " ".join(words)


TEXTS = [_masked(t) for t in SAMPLE_TEXTS][:40]
BAD = {"no-mask": "No mask here.", "too-long": TOO_LONG, "none": None, "number": 7}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for the module, on loopback only."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def model(fp32_dir):
    return Model.load(fp32_dir)


def _frame(bad: dict) -> pd.DataFrame:
    ids = [f"t{i}" for i in range(len(TEXTS))] + list(bad)
    return pd.DataFrame({"id": ids, "n": range(len(ids)), "text": pd.Series(TEXTS + list(bad.values()), dtype=object)})


def _blocks(frame: pd.DataFrame, n: int) -> list:
    """``frame`` in ``n`` contiguous pieces (Ray 2.60's own split, np.array_split, breaks on pandas 3)."""
    step = -(-len(frame) // n)
    return [frame.iloc[i:i + step] for i in range(0, len(frame), step)]


def _run(cls, frame, model_dir, batch_size=5, **options):
    ds = ray.data.from_pandas(_blocks(frame, 6)).map_batches(
        cls, fn_constructor_kwargs={"model_dir": str(model_dir), **options}, batch_size=batch_size,
        batch_format="pandas", num_cpus=1, compute=ray.data.ActorPoolStrategy(size=2))
    return ds.to_pandas()


def _api_error(call, text) -> str:
    with pytest.raises((TypeError, ValueError)) as info:
        call(text)
    return row_message(info.value)


def _check_rows(out: pd.DataFrame, frame: pd.DataFrame, bad: dict, api_error) -> pd.DataFrame:
    """Every input row once, columns kept, bad rows with the API's message; returns the good rows."""
    assert sorted(out["id"]) == sorted(frame["id"])
    out = out.set_index("id").loc[frame["id"]]
    assert out["n"].tolist() == frame["n"].tolist()
    for key, text in bad.items():
        assert out.loc[key, "error"] == api_error(text), key
    good = out[out["error"].isna()]
    assert len(good) == len(TEXTS)
    return good


def test_fill_mask_rows_equal_the_api(cluster, fp32_dir, model):
    fm = FillMask.from_model(model)
    frame = _frame(BAD)
    out = _run(FillMaskBatch, frame, fp32_dir, top_k=3)
    good = _check_rows(out, frame, BAD, lambda t: _api_error(lambda x: fm([x], top_k=3), t))
    for text, result in zip(TEXTS, good["result"]):
        expected = fm([text], top_k=3)[0]
        expected = expected if isinstance(expected[0], list) else [expected]
        assert len(result) == len(expected)
        for got_mask, want_mask in zip(result, expected):
            got_mask = list(got_mask)
            assert [p["token"] for p in got_mask] == [p["token"] for p in want_mask]
            assert [p["sequence"] for p in got_mask] == [p["sequence"] for p in want_mask]
            assert [p["token_str"] for p in got_mask] == [p["token_str"] for p in want_mask]
            np.testing.assert_allclose([p["score"] for p in got_mask], [p["score"] for p in want_mask], atol=ATOL)


def test_embed_rows_equal_the_api(cluster, fp32_dir, model):
    embedder = Embedder(model)
    bad = {k: v for k, v in BAD.items() if k != "no-mask"}
    frame = _frame(bad)
    out = _run(EmbedBatch, frame, fp32_dir, normalize=True, pooling="cls")
    good = _check_rows(out, frame, bad, lambda t: _api_error(lambda x: embedder.embed([x]), t))
    want = embedder.embed(TEXTS, normalize=True, pooling="cls")
    got = np.stack([np.asarray(v, dtype=np.float32) for v in good["embedding"]])
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL)


def test_score_rows_equal_the_api(cluster, fp32_dir, model):
    scorer = Scorer(model)
    bad = {k: v for k, v in BAD.items() if k != "no-mask"}
    frame = _frame(bad)
    out = _run(ScoreBatch, frame, fp32_dir, metric="word_l2r", per_token=True)
    good = _check_rows(out, frame, bad, lambda t: _api_error(lambda x: scorer.score([x]), t))
    want = scorer.score(TEXTS, metric="word_l2r", per_token=True)
    np.testing.assert_allclose(good["score"].to_numpy(), [w.score for w in want], atol=1e-4)
    assert [list(t) for t in good["tokens"]] == [list(w.tokens) for w in want]


def test_arrow_batches_keep_types_and_a_wrong_option_fails_at_once(fp32_dir):
    """In process (no Ray needed): Arrow in, Arrow out with fixed column types, even for bad rows only."""
    task = EmbedBatch(fp32_dir)
    table = task(pa.table({"id": [1, 2], "text": [None, None]}))
    assert table.column_names == ["id", "text", "embedding", "error"]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), task.dim)
    assert table.column("embedding").null_count == 2
    with pytest.raises(ValueError, match="top_k must be between"):
        FillMaskBatch(fp32_dir, top_k=0)


def test_a_registered_task_runs_on_ray(cluster, fp32_dir, model, tmp_path):
    """A fourth task (tests/toy_tasks.py), registered by an entry point the workers see, through the
    generic callable: no line of xlm_onnx.ray names it."""
    from toy_tasks import HiddenMean, pythonpath, write_distribution

    site = pythonpath(write_distribution(tmp_path / "site", HiddenMean))
    bad = {k: v for k, v in BAD.items() if k != "no-mask"}
    frame = _frame(bad)
    out = ray.data.from_pandas(_blocks(frame, 6)).map_batches(
        BulkTask, fn_constructor_kwargs={"model_dir": str(fp32_dir), "task": "hidden-mean"}, batch_size=5,
        batch_format="pandas", num_cpus=1, compute=ray.data.ActorPoolStrategy(size=2),
        runtime_env={"env_vars": {"PYTHONPATH": site}}).to_pandas()
    toy = HiddenMean(model)
    good = _check_rows(out, frame, bad, lambda t: _api_error(lambda x: toy([x]), t))
    np.testing.assert_allclose(np.array(good["hidden_mean"].tolist(), np.float64), toy(TEXTS), rtol=0, atol=ATOL)


class _PidFillMask(FillMaskBatch):
    """Records each actor's pid; after its first batch an actor waits for the test's go (a file),
    so work is in flight, whatever the machine's speed, when the test kills one."""

    def __init__(self, pid_dir: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pid_dir, self.calls = Path(pid_dir), 0
        (self.pid_dir / str(os.getpid())).touch()

    def __call__(self, batch):
        import time

        self.calls += 1
        go, deadline = self.pid_dir.parent / "go", time.monotonic() + 300
        if self.calls > 1 and not go.exists():
            (self.pid_dir.parent / f"waiting-{os.getpid()}").touch()  # a batch in hand, work left to do
        while self.calls > 1 and not go.exists():
            assert time.monotonic() < deadline, "the test never said go"
            time.sleep(0.01)
        return super().__call__(batch)


def test_killed_actor_is_restarted_and_no_row_is_lost_or_duplicated(cluster, fp32_dir, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test file
    frame = pd.DataFrame({"id": range(400), "text": (TEXTS * 10)[:400]})
    reference = FillMaskBatch(fp32_dir, top_k=2)(pa.Table.from_pandas(frame)).to_pandas()
    pids = tmp_path / "pids"
    pids.mkdir()
    ds = ray.data.from_pandas(_blocks(frame, 40)).map_batches(
        _PidFillMask, fn_constructor_kwargs={"pid_dir": str(pids), "model_dir": str(fp32_dir), "top_k": 2},
        batch_size=5, batch_format="pandas", num_cpus=1, compute=ray.data.ActorPoolStrategy(size=2))
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(lambda: list(ds.iter_batches(batch_size=None, batch_format="pandas")))
        wait_until(lambda: any(tmp_path.glob("waiting-*")), "an actor holds a batch mid-job")
        os.kill(int(next(tmp_path.glob("waiting-*")).name.split("-")[1]), signal.SIGKILL)  # as the OOM killer would
        (tmp_path / "go").touch()
        out = pd.concat(seen.result()).sort_values("id")
    assert out["id"].tolist() == list(range(400)), "a row was lost or answered twice"
    assert len(list(pids.iterdir())) >= 3, "no actor was started after the kill"
    for got, want in zip(out["result"], reference["result"]):
        assert [p["token"] for p in got[0]] == [p["token"] for p in want[0]]


def _jsonl(path: Path) -> Path:
    lines = [json.dumps({"id": i, "lang": "x", "text": t}) for i, t in enumerate(TEXTS)]
    lines[2] = json.dumps({"id": 2, "text": TEXTS[2]})
    lines[3] = json.dumps({"id": 3, "text": "No mask here."})
    lines[5] = "{not json"
    lines[8] = json.dumps({"id": 8, "text": 12})
    path.write_text("\n".join(lines) + "\n")
    return path


def _bulk(*args, check=True):
    result = subprocess.run(CLI + ["bulk", *map(str, args)], capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_bulk_writes_bounded_files_resumes_and_fails_fast(cluster, fp32_dir, model, tmp_path):
    src, out = _jsonl(tmp_path / "in.jsonl"), tmp_path / "out"
    args = ["fill-mask", "--input", src, "--output", out, "--address", cluster, "--model", fp32_dir,
            "--rows-per-file", 16, "--batch-size", 5, "--top-k", 2]
    _bulk(*args)
    files = sorted(out.glob("part-*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in files] == [16, 16, 8]
    table = pq.read_table(files)
    assert table.column("id").to_pylist() == [None if i == 5 else i for i in range(len(TEXTS))]  # line 6: bad JSON
    assert table.column("lang").to_pylist()[:3] == ["x", "x", None]  # other fields kept (line 4 has none)
    table = table.to_pandas()
    errors = table["error"].tolist()
    assert errors[3] == "text has no mask token (write <special1>, <mask> or [MASK])"
    assert errors[5].startswith("line 6 is not valid JSON")
    assert errors[8] == "line 9: \"text\" is int, not a string"
    fm = FillMask.from_model(model)
    for i in (0, 1, 7, len(TEXTS) - 1):
        assert [p["token"] for p in table["result"][i][0]] == [p["token"] for p in fm(TEXTS[i], top_k=2)]

    before = {f.name: f.stat().st_mtime_ns for f in files}
    files[1].unlink()  # as if the driver had died while answering part 1
    rerun = _bulk(*args)
    assert "wrote 16 rows (0 with an error) to 1 file(s) in" in rerun.stderr
    assert "2 file(s) were already there" in rerun.stderr
    after = {f.name: f.stat().st_mtime_ns for f in sorted(out.glob("part-*.parquet"))}
    assert {k: v for k, v in after.items() if k != files[1].name} == {k: v for k, v in before.items() if k != files[1].name}
    assert pq.read_table(sorted(out.glob("part-*.parquet"))).column("id").to_pylist()[16:32] == list(range(16, 32))

    other = _bulk(*args[:-1], 3, check=False)  # another job into the same directory
    assert other.returncode == 2 and "holds a different job (options changed)" in other.stderr

    fast = _bulk(*[a if a != out else tmp_path / "fast" for a in args], "--fail-fast", check=False)
    assert fast.returncode == 2, fast.stderr
    assert fast.stderr.strip().splitlines()[-1].startswith("xlm-onnx: error: line 4: text has no mask token")
    assert "Traceback" not in fast.stderr and not list((tmp_path / "fast").glob("part-*"))


def test_cli_bulk_parquet_on_its_own_local_ray(fp32_dir, tmp_path):
    """`--num-cpus`: the job starts (and stops) its own Ray; Parquet in, embeddings out."""
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"key": [f"k{i}" for i in range(len(TEXTS))], "text": TEXTS}), src, row_group_size=7)
    run = _bulk("embed", "--input", src, "--output", tmp_path / "out", "--num-cpus", 2, "--model", fp32_dir,
                "--normalize", "--rows-per-file", 20, "--batch-size", 8)
    assert not ERROR_LINE.search(run.stderr), run.stderr  # a normal run prints no error-level line
    table = pq.read_table(tmp_path / "out").to_pandas()
    assert table["key"].tolist() == [f"k{i}" for i in range(len(TEXTS))] and table["error"].isna().all()
    want = Embedder(Model.load(fp32_dir)).embed(TEXTS, normalize=True)
    np.testing.assert_allclose(np.stack(table["embedding"].to_list()), want, atol=ATOL)


def test_cli_bulk_runs_a_registered_task_with_no_edit_to_the_command(fp32_dir, model, tmp_path):
    """`xlm-onnx bulk hidden-mean`: the toy task of an installed package gets a bulk job of its own
    (its options from its declaration), answered as its Python API answers, a bad row reported."""
    from toy_tasks import HiddenMean, pythonpath, write_distribution

    src = tmp_path / "in.jsonl"
    texts = TEXTS[:6]
    src.write_text("".join(json.dumps({"id": i, "text": t if i != 4 else "x " * 600}) + "\n" for i, t in enumerate(texts)))
    env = {**os.environ, "PYTHONPATH": pythonpath(write_distribution(tmp_path / "site", HiddenMean))}
    run = subprocess.run(CLI + ["bulk", "hidden-mean", "--input", str(src), "--output", str(tmp_path / "out"),
                                "--num-cpus", "1", "--model", str(fp32_dir)],
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, env=env)
    assert run.returncode == 0, run.stderr
    table = pq.read_table(tmp_path / "out")
    errors = table.column("error").to_pylist()
    assert table.column("id").to_pylist() == list(range(6))
    assert errors[:4] == [None] * 4 and errors[5] is None, errors
    assert errors[4].startswith("text is 602 tokens long with specials; the model takes at most "), errors
    table = table.to_pandas()
    good = [0, 1, 2, 3, 5]
    want = HiddenMean(model)([texts[i] for i in good])
    np.testing.assert_allclose(table["hidden_mean"][good].to_numpy(np.float64), want, rtol=0, atol=ATOL)


def test_cli_bulk_without_the_extra_or_with_another_tasks_option_exits_2(tmp_path):
    """`bulk TASK` takes that task's options only: another task's is an unknown flag, one line."""
    src = _jsonl(tmp_path / "in.jsonl")
    code = ("import sys; sys.modules['ray'] = None; from xlm_onnx.cli import main; "
            f"sys.exit(main(['bulk', 'score', '--input', {str(src)!r}, '--output', {str(tmp_path / 'o')!r}]))")
    missing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("xlm-onnx: error: xlm-onnx bulk needs the [ray] extra (ray[data] is not "
                                      "installed): pip install 'xlm-onnx[ray]'")
    wrong = _bulk("embed", "--input", src, "--output", tmp_path / "o2", "--top-k", 3, check=False)
    assert wrong.returncode == 2 and wrong.stderr.strip() == ("xlm-onnx: error: bulk embed: unrecognized arguments: "
                                                              "--top-k 3; see xlm-onnx bulk embed --help")


@pytest.mark.parametrize("which,configs", [("int8_dir", ((3, 2), (25, 16))), ("demo", ((7, 8),))])
def test_int8_rows_are_identical_to_the_api_alone(cluster, request, which, configs):
    """Per-row int8 (the default): whatever Ray's batches (rows per call) and the task's own
    (texts per ``session.run``), each row's answer equals the API's on that text alone, exactly."""
    from test_batch_invariance import invariance_texts, masked

    from xlm_onnx import default_model_dir

    model_dir = request.getfixturevalue(which) if which != "demo" else default_model_dir()
    model = Model.load(model_dir)
    fm, embedder, scorer = FillMask.from_model(model), Embedder(model), Scorer(model)
    texts = invariance_texts()
    frame = pd.DataFrame({"id": range(len(texts)), "text": [masked(t) for t in texts]})
    plain = pd.DataFrame({"id": range(len(texts)), "text": texts})
    fills = [fm(t) for t in frame["text"]]
    vectors = [embedder.embed(t) for t in texts]
    scores = [scorer.score(t) for t in texts]

    def run(cls, data, rows, **options):
        ds = ray.data.from_pandas(_blocks(data, 4)).map_batches(
            cls, fn_constructor_kwargs={"model_dir": str(model_dir), **options}, batch_size=rows,
            batch_format="pandas", num_cpus=1, compute=ray.data.ActorPoolStrategy(size=2))
        return ds.to_pandas().sort_values("id")

    for rows, per_run in configs:
        out = run(FillMaskBatch, frame, rows, batch_size=per_run)
        for got, want in zip(out["result"], fills):
            got = [{k: (np.float32(v) if k == "score" else v) for k, v in p.items()} for p in list(got[0])]
            assert got == [{**p, "score": np.float32(p["score"])} for p in want]
        out = run(EmbedBatch, plain, rows, batch_size=per_run)
        assert all(np.array_equal(np.asarray(g, dtype=np.float32), w) for g, w in zip(out["embedding"], vectors))
        out = run(ScoreBatch, plain, rows, max_tokens=per_run * 64)
        assert out["score"].tolist() == scores
