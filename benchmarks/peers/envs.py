"""The peers' own virtualenvs, outside the repository, with pinned versions.

optimum-onnx 0.1.0 and optimum-intel 2.2.0 both require ``transformers<4.58`` while xlm-onnx's
export and tests pin transformers 5.x, so each peer gets a virtualenv of its own under
``~/.cache/xlm-onnx-peers/<name>`` (``--root`` or ``XLM_ONNX_PEERS``), installed from a full lock
file beside this module (``requirements-<name>.txt``). torch is installed first with the same pin
(a local wheel where pip has one, e.g. a ``find-links`` folder, else the registry), so the large
download happens once and its version cannot drift. A venv counts as ready only once the marker
``xlm-onnx-peer.json`` (lock file hash, ``pip freeze``) is written; a failed install leaves
``install-failed.txt`` with pip's last lines, which the benchmark reports instead of the peer::

    python benchmarks/peers/envs.py                     # create or update every peer venv
    python benchmarks/peers/envs.py openvino --force    # rebuild one
    python benchmarks/peers/envs.py --status            # what is there
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: peer venv name -> its lock file (the systems each one runs are in ``worker.py``).
ENVS = {"optimum-ort": HERE / "requirements-optimum-ort.txt", "openvino": HERE / "requirements-openvino.txt"}
MARKER = "xlm-onnx-peer.json"
FAILED = "install-failed.txt"
ROOT_ENV = "XLM_ONNX_PEERS"


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or Path.home() / ".cache" / "xlm-onnx-peers")


def lock_hash(name: str) -> str:
    return hashlib.sha256(ENVS[name].read_bytes()).hexdigest()[:16]


def python(root: Path, name: str) -> Path:
    return root / name / "bin" / "python"


def torch_pin(name: str) -> str:
    for line in ENVS[name].read_text().splitlines():
        if line.lower().startswith("torch=="):
            return line.strip()
    raise ValueError(f"{ENVS[name].name} pins no torch")


def state(root: Path, name: str) -> tuple[str, str]:
    """(``ready`` | ``stale`` | ``failed`` | ``absent``, a one-line reason or the python path)."""
    env = root / name
    marker = env / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("lock") == lock_hash(name) and python(root, name).is_file():
            return "ready", str(python(root, name))
        return "stale", f"{env} was built from another {ENVS[name].name}: run python benchmarks/peers/envs.py {name}"
    if (env / FAILED).is_file():
        tail = (env / FAILED).read_text().strip().splitlines()
        return "failed", f"install failed ({tail[-1] if tail else 'no output'}); full log in {env / FAILED}"
    return "absent", f"no virtualenv at {env}: run python benchmarks/peers/envs.py {name}"


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _locked(name: str) -> set[str]:
    return {_norm(line.split("==")[0]) for line in ENVS[name].read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def _installed(py: Path) -> set[str]:
    out = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    return {_norm(p["name"]) for p in json.loads(out.stdout)}


def _pip(py: Path, *args: str, log) -> None:
    cmd = [str(py), "-m", "pip", "install", "--no-input", *args]
    log(f"peers: {' '.join(cmd)}")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-6000:] + f"\npip exited with status {proc.returncode}")


def create(root: Path, name: str, force: bool = False, log=print) -> str:
    """Builds ``root/name`` unless it is ready; returns the final state. A venv is not relocatable
    (its scripts name their interpreter by absolute path), so it is built in place and a stale or
    half-built one is removed first; only the marker makes it count."""
    status, _ = state(root, name)
    if status == "ready" and not force:
        log(f"peers: {name} ready in {root / name}")
        return status
    env, py = root / name, python(root, name)
    if status != "stale" or force:
        shutil.rmtree(env, ignore_errors=True)
    env.parent.mkdir(parents=True, exist_ok=True)
    (env / MARKER).unlink(missing_ok=True)
    (env / FAILED).unlink(missing_ok=True)
    try:
        if status != "stale" or force:  # a stale venv is brought to the new lock in place (exact pins)
            subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
            _pip(py, "--upgrade", "pip", log=log)
            _pip(py, torch_pin(name), log=log)  # first and alone: the big wheel, from local disk where it lies
        _pip(py, "--no-deps", "-r", str(ENVS[name]), log=log)  # the lock is complete: exactly these
        extra = sorted(_installed(py) - _locked(name) - {"pip"})
        if extra:  # left by an older lock (in-place update) or pulled in by the torch install
            log(f"peers: {name}: removing {', '.join(extra)} (not in {ENVS[name].name})")
            subprocess.run([str(py), "-m", "pip", "uninstall", "-y", *extra], check=True, capture_output=True)
        freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        (env / FAILED).parent.mkdir(parents=True, exist_ok=True)
        (env / FAILED).write_text(str(exc))
        log(f"peers: {name}: {state(root, name)[1]}")
        return "failed"
    (env / MARKER).write_text(json.dumps({"lock": lock_hash(name), "freeze": freeze.splitlines()}, indent=1))
    log(f"peers: {name} ready in {env}")
    return "ready"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help=f"peer venvs to build (default: all of {', '.join(ENVS)})")
    p.add_argument("--root", type=Path, default=default_root(), help=f"where the venvs go (env {ROOT_ENV})")
    p.add_argument("--force", action="store_true", help="rebuild even if ready")
    p.add_argument("--status", action="store_true", help="only print each venv's state")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in ENVS]
    if unknown:
        print(f"envs.py: unknown peer venvs {unknown}; known: {', '.join(ENVS)}", file=sys.stderr)
        return 2
    names = args.names or list(ENVS)
    if args.status:
        for name in names:
            print(name, *state(args.root, name))
        return 0
    results = [create(args.root, name, force=args.force) for name in names]
    return 0 if all(r == "ready" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
