"""Offline model lookup: a directory, a Hugging Face cache repo folder, or a model id in the cache.

Users keep checkpoints (and exports they share) in the Hugging Face cache, so ``--model`` and
``export`` accept what HF tools accept, but this module never downloads and never opens a
connection: ``huggingface_hub`` (imported only when a cache folder or an id is given, and only if
it is installed; the runtime does not need it) is called with ``local_files_only=True``. Without
it the documented cache layout is read directly::

    models--org--name/refs/main            -> the commit sha of branch "main"
    models--org--name/snapshots/<sha>/...  -> the files (symlinks into blobs/)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import format as fmt
from .errors import ModelFormatError, ModelNotFoundError

REPO_PREFIX = "models--"
DEFAULT_REVISION = "main"
#: Hub ids: ``name`` or ``org/name``; letters, digits, ``-``, ``_``, ``.`` (hub's own rule, simplified).
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")
_COMMIT = re.compile(r"[0-9a-f]{40}")


def hub_cache_dir() -> Path:
    """The HF hub cache, in huggingface_hub's order: ``HF_HUB_CACHE``, ``HF_HOME/hub``, ``~/.cache``."""
    env = os.environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def is_repo_folder(path: Path) -> bool:
    """Whether ``path`` is a cache repo folder (``models--org--name`` holding ``snapshots/``)."""
    return path.name.startswith(REPO_PREFIX) and (path / "snapshots").is_dir()


def resolve_model(spec: str | os.PathLike, revision: str | None = None) -> Path:
    """Finds the directory ``spec`` names, on this machine only.

    Args:
        spec: A directory; a cache repo folder ``.../models--org--name`` (its newest snapshot:
            ``refs/main``, or the most recent ``snapshots/<sha>`` when no ref was recorded); or a
            model id ``org/name`` looked up in the HF cache (``HF_HUB_CACHE`` / ``HF_HOME``).
        revision: Branch, tag or commit of a cache folder or id (default: ``main``).

    Returns:
        The directory (for the cache, ``snapshots/<sha>``, whose files link into ``blobs/``).

    Raises:
        ModelNotFoundError: Not a directory, and not a model cached here (nothing is downloaded).
        ValueError: ``revision`` given for a plain directory, which has no revisions.
    """
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise TypeError(f"revision must be a non-empty str or None, not {revision!r}")
    path = Path(spec).expanduser()
    if path.is_dir():
        if is_repo_folder(path):
            repo_id = path.name[len(REPO_PREFIX):].replace("--", "/")
            return _snapshot(path.parent, repo_id, revision)
        if revision is not None:
            raise ValueError(f"--revision {revision} applies to a Hugging Face cache folder or model id; "
                             f"{path} is a plain directory")
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path}: not a directory")
    text = os.fspath(spec)
    if not _REPO_ID.fullmatch(text) or "--" in text or ".." in text:
        raise ModelNotFoundError(f"{text}: no such directory")
    return _snapshot(None, text, revision, missing_dir=True)


def model_dir(spec: str | os.PathLike | None, revision: str | None = None) -> Path | None:
    """A command's ``--model`` / ``MODEL``, resolved offline (:func:`resolve_model`); ``None`` is
    the embedded demo model.

    Raises:
        ValueError: ``revision`` without ``spec``.
        ModelFormatError: ``spec`` is a Hugging Face checkpoint, not an exported directory.
    """
    if spec is None:
        if revision is not None:
            raise ValueError("--revision needs --model (the embedded demo model has no revisions)")
        return None
    path = resolve_model(spec, revision)
    if not (path / fmt.MANIFEST_FILE).is_file() and (path / "config.json").is_file():
        raise ModelFormatError(f"{path}: a Hugging Face checkpoint, not an xlm-onnx model directory; "
                               f"convert it first: xlm-onnx export {spec} OUT_DIR")
    return path


def _snapshot(cache: Path | None, repo_id: str, revision: str | None, missing_dir: bool = False) -> Path:
    """``snapshots/<sha>`` of ``repo_id`` in ``cache`` (``None``: the user's HF cache)."""
    hub = _hub()
    if cache is None:
        cache = Path(hub.constants.HF_HUB_CACHE) if hub is not None else hub_cache_dir()
    folder = cache / (REPO_PREFIX + repo_id.replace("/", "--"))
    if revision is None and not (folder / "refs" / DEFAULT_REVISION).is_file():
        # Fetched by commit only (no ref recorded): the newest snapshot is the one fetched last.
        newest = _newest_snapshot(folder)
        if newest is not None:
            return newest
    found = _hub_snapshot(hub, cache, repo_id, revision) if hub is not None else _read_snapshot(folder, revision)
    if found is not None:
        return found
    what = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    hint = f"{repo_id}: no such directory, and " if missing_dir else ""
    raise ModelNotFoundError(
        f"{hint}model {what} is not in the Hugging Face cache {cache} (looked offline; xlm-onnx never "
        f"downloads: fetch it with `hf download {repo_id}`, or set HF_HUB_CACHE / HF_HOME to the cache that has it)"
    )


def _hub():
    """``huggingface_hub`` when installed (its cache API is what HF tools use), else ``None``."""
    try:
        import huggingface_hub
        import huggingface_hub.constants  # noqa: F401  (a submodule: import it explicitly)
    except ImportError:
        return None
    return huggingface_hub


def _hub_snapshot(hub, cache: Path, repo_id: str, revision: str | None) -> Path | None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:  # local_files_only: never a network call (the hub's documented offline mode)
        found = hub.snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True)
    except LocalEntryNotFoundError as exc:
        if type(exc).__name__ == "IncompleteSnapshotError":  # the hub knows files are missing: say so
            raise ModelNotFoundError(" ".join(str(exc).split())) from None
        return None
    except ValueError as exc:  # HFValidationError: an id the hub would never serve
        raise ModelNotFoundError(f"{repo_id}: no such directory, and not a Hugging Face model id ({exc})") from None
    return Path(found)


def _read_snapshot(folder: Path, revision: str | None) -> Path | None:
    """The cache layout read by hand, for when huggingface_hub is not installed."""
    revision = revision or DEFAULT_REVISION
    commit = revision
    if not _COMMIT.fullmatch(revision):
        ref = folder / "refs" / revision
        if not ref.is_file():
            return None
        commit = ref.read_text(encoding="utf-8").strip()
    snapshot = folder / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def _newest_snapshot(folder: Path) -> Path | None:
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    dirs = [p for p in snapshots.iterdir() if p.is_dir()]
    return max(dirs, key=lambda p: p.stat().st_mtime, default=None)
