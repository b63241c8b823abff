"""Offline model lookup through the real CLI: directories, HF cache repo folders, cached model ids."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xlm_onnx import FillMask
from xlm_onnx import format as fmt

TEXT = "Alle Menschen sind <special1> und gleich."
OLD, NEW = "a" * 40, "b" * 40

# Runs the CLI with sockets disabled (any connection attempt fails and is recorded) and, optionally,
# some packages blocked; writes {"connects": [...], "hub_imported": bool} to argv[1].
GUARDED = """
import json, runpy, socket, sys
report, blocked = sys.argv[1], tuple(filter(None, sys.argv[2].split(",")))
connects = []
def refuse(self, address, *args):
    connects.append(repr(address))
    raise OSError("network call attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = ["xlm-onnx", *sys.argv[3:]]
try:
    runpy.run_module("xlm_onnx", run_name="__main__", alter_sys=True)
finally:
    with open(report, "w") as handle:
        json.dump({"connects": connects, "hub_imported": "huggingface_hub" in sys.modules}, handle)
"""


def make_hf_cache(cache: Path, repo_id: str, snapshots: dict[str, Path], refs: dict[str, str]) -> Path:
    """Lays out ``cache/models--org--name`` as huggingface_hub does: blobs by hash, snapshots of relative
    symlinks into blobs/, refs/<name> holding a commit sha (no newline)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for sha, source in snapshots.items():
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            data = file.read_bytes()
            blob = hashlib.sha256(data).hexdigest()
            (repo / "blobs" / blob).write_bytes(data)
            link = repo / "snapshots" / sha / file.relative_to(source)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(repo / "blobs" / blob, link.parent))
    for name, sha in refs.items():
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / name).write_text(sha)
    return repo


@pytest.fixture(scope="module")
def cache(tmp_path_factory, fp32_dir, lang_dir, tiny_checkpoint) -> Path:
    """A cache with org/tiny-onnx (main -> fp32 export, tag v1 -> the lang export), org/tiny-xlm (the HF
    checkpoint) and org/no-ref (two snapshots, no refs: the newer one is the fp32 export)."""
    root = tmp_path_factory.mktemp("hf") / "hub"
    make_hf_cache(root, "org/tiny-onnx", {OLD: lang_dir, NEW: fp32_dir}, {"main": NEW, "v1": OLD})
    make_hf_cache(root, "org/tiny-xlm", {NEW: tiny_checkpoint}, {"main": NEW})
    repo = make_hf_cache(root, "org/no-ref", {OLD: lang_dir, NEW: fp32_dir}, {})
    os.utime(repo / "snapshots" / OLD, (1_000_000, 1_000_000))
    os.utime(repo / "snapshots" / NEW, (2_000_000, 2_000_000))
    return root


@pytest.fixture(scope="module")
def expected(fp32_dir):
    return json.loads(json.dumps(FillMask.from_pretrained(fp32_dir)(TEXT, top_k=3)))


def _guarded(tmp_path, args, *, env=None, blocked=""):
    report = tmp_path / "report.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "0", **(env or {})}  # offline by our own doing, not the hub's switch
    env = {k: v for k, v in env.items() if v is not None}
    proc = subprocess.run([sys.executable, "-c", GUARDED, str(report), blocked, *args], capture_output=True,
                          text=True, env=env)
    return proc, json.loads(report.read_text())


def _fill(model, *extra):
    return ["fill-mask", "--model", model, "--json", "--top-k", "3", *extra, TEXT]


@pytest.mark.parametrize("blocked", ["", "huggingface_hub"], ids=["huggingface_hub", "fallback"])
def test_repo_folder_and_cached_id_resolve_offline(cache, expected, tmp_path, blocked):
    """Folder models--org--name and id org/name (HF_HUB_CACHE or HF_HOME): refs/main's snapshot, no network."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "hub").symlink_to(cache)
    runs = [(_fill(str(cache / "models--org--tiny-onnx")), {}),
            (_fill("org/tiny-onnx"), {"HF_HUB_CACHE": str(cache)}),
            (_fill("org/tiny-onnx"), {"HF_HOME": str(home), "HF_HUB_CACHE": None}),
            (_fill("org/no-ref"), {"HF_HUB_CACHE": str(cache)})]  # no ref recorded: the newest snapshot
    for args, env in runs:
        proc, report = _guarded(tmp_path, args, env=env, blocked=blocked)
        assert proc.returncode == 0, (args, env, proc.stderr)
        assert json.loads(proc.stdout) == {"line": 1, "text": TEXT, "result": expected}
        assert report["connects"] == []
        assert report["hub_imported"] is (blocked == "")  # its cache API when installed


@pytest.mark.parametrize("blocked", ["", "huggingface_hub"], ids=["huggingface_hub", "fallback"])
def test_revision_picks_the_snapshot(cache, lang_dir, tmp_path, blocked):
    lang_inputs = list(fmt.read_manifest(lang_dir).inputs)
    assert fmt.LANGS in lang_inputs
    for revision in ("v1", OLD):
        for model in (str(cache / "models--org--tiny-onnx"), "org/tiny-onnx"):
            proc, report = _guarded(tmp_path, ["info", model, "--revision", revision],
                                    env={"HF_HUB_CACHE": str(cache)}, blocked=blocked)
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout)["inputs"] == lang_inputs and report["connects"] == []
    proc, _ = _guarded(tmp_path, ["info", "org/tiny-onnx"], env={"HF_HUB_CACHE": str(cache)}, blocked=blocked)
    assert fmt.LANGS not in json.loads(proc.stdout)["inputs"]  # main -> the fp32 export


@pytest.mark.parametrize("blocked", ["", "huggingface_hub"], ids=["huggingface_hub", "fallback"])
def test_not_cached_is_one_clear_line(cache, tmp_path, blocked):
    env = {"HF_HUB_CACHE": str(cache)}
    for args, message in [
        (_fill("org/absent"), f"org/absent: no such directory, and model 'org/absent' is not in the Hugging Face "
                              f"cache {cache} (looked offline; xlm-onnx never downloads: fetch it with `hf download "
                              "org/absent`, or set HF_HUB_CACHE / HF_HOME to the cache that has it)"),
        (_fill("org/tiny-onnx", "--revision", "v9"),
         f"org/tiny-onnx: no such directory, and model 'org/tiny-onnx' at revision 'v9' is not in the Hugging Face "
         f"cache {cache} (looked offline; xlm-onnx never downloads: fetch it with `hf download org/tiny-onnx`, or "
         "set HF_HUB_CACHE / HF_HOME to the cache that has it)"),
        (_fill("./nowhere/model"), "./nowhere/model: no such directory"),
    ]:
        proc, report = _guarded(tmp_path, args, env=env, blocked=blocked)
        assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {message}\n", proc.stderr
        assert report["connects"] == []


def test_plain_directory_never_imports_huggingface_hub(fp32_dir, expected, tmp_path):
    proc, report = _guarded(tmp_path, _fill(str(fp32_dir)))
    assert proc.returncode == 0 and json.loads(proc.stdout)["result"] == expected
    assert report["hub_imported"] is False
    proc, _ = _guarded(tmp_path, _fill(str(fp32_dir), "--revision", "main"))
    assert proc.returncode == 2 and proc.stderr == (
        f"xlm-onnx: error: --revision main applies to a Hugging Face cache folder or model id; {fp32_dir} is a "
        "plain directory\n")


def test_checkpoint_given_as_model_says_export_first(cache, tmp_path):
    proc, _ = _guarded(tmp_path, _fill("org/tiny-xlm"), env={"HF_HUB_CACHE": str(cache)})
    snapshot = cache / "models--org--tiny-xlm" / "snapshots" / NEW
    assert proc.returncode == 2 and proc.stderr == (
        f"xlm-onnx: error: {snapshot}: a Hugging Face checkpoint, not an xlm-onnx model directory; convert it "
        "first: xlm-onnx export org/tiny-xlm OUT_DIR\n")


def test_export_from_a_cached_model_id(cache, tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    proc, report = _guarded(tmp_path, ["export", "org/tiny-xlm", str(out), "--quiet"],
                            env={"HF_HUB_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert report["connects"] == []
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert fmt.read_manifest(out).source["config"] == config
    shutil.rmtree(out)
