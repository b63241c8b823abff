"""What ``xlm-onnx bulk`` and the Ray Serve path set up before Ray starts: usage statistics off
unless the user turned them on, and no known-benign error-level lines on a normal run.

Ray reports usage statistics to its maintainers by default (``RAY_USAGE_STATS_ENABLED``); a
command that starts Ray on the user's behalf should not opt them in, so it is ``0`` unless the
environment says otherwise (then the user's choice stands).

Ray Data 2.60 passes every actor of an actor pool its constructor arguments as object
references and restarts actors (``max_restarts=-1``), so the driver's core worker prints, for
each pool, an ``E``-level line ("Actor ... has constructor arguments in the object store and
max_restarts > 0", ray-project/ray#57733) on a run where nothing is wrong: Ray Data keeps
those references alive for the pool's lifetime. It is written by C++ straight to file
descriptor 2, below Python's logging, so :class:`StderrFilter` drops exactly that line there;
every other line passes unchanged. ``XLM_ONNX_DEBUG=1`` turns the filter off.

A normal stop also prints, on the driver's stdout, one line per actor Ray Data or Ray Serve
killed on purpose (``(raylet) Task ServeController.graceful_shutdown failed. There are infinite
retries remaining ... killed by `ray.kill```; once per pool actor on ``bulk --fail-fast``): the
retry it announces never happens, the job is over. :func:`filtered_output` drops those on
descriptor 1 as well. And Ray colours the ``(pid=...)`` prefix of the lines it forwards from its
workers; :func:`ray_defaults` turns that off (``RAY_COLOR_PREFIX=0``) unless both stdout and
stderr are terminals, so a log file holds no escape codes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from typing import MutableMapping

USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"
COLOR_ENV = "RAY_COLOR_PREFIX"
#: Lines Ray prints at error level on a normal run, which say nothing the user can act on.
BENIGN_LINES = (re.compile(rb"core_worker\.cc:\d+: Actor with class name: .* has constructor arguments in the "
                           rb"object store and max_restarts > 0"),
                re.compile(rb"\(raylet\).* Task \S+ failed\. There are infinite retries remaining, so the task will "
                           rb"be retried\. Error: The actor is dead because it was killed by `ray\.kill`"))
_MAX_LINE = 1 << 16  # bytes held while waiting for a newline; a longer line passes in pieces


def ray_defaults(environ: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Sets Ray's usage statistics off in ``environ`` (default ``os.environ``) unless already set,
    and its colours off unless both stdout and stderr are terminals (or the user chose)."""
    environ = os.environ if environ is None else environ
    environ.setdefault(USAGE_STATS_ENV, "0")
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        environ.setdefault(COLOR_ENV, "0")
    return environ


@contextlib.contextmanager
def filtered_output():
    """Within ``with``: descriptors 1 and 2 both go through a :class:`StderrFilter`."""
    sys.stdout.flush()
    with StderrFilter(fd=1), StderrFilter(fd=2):
        yield


class StderrFilter:
    """Within ``with``: file descriptor ``fd`` (2: stderr) goes through a pipe that drops
    :data:`BENIGN_LINES`.

    Lines keep their order (one reader thread); on exit the original descriptor is restored
    and what is left in the pipe is written out.
    """

    def __init__(self, patterns=BENIGN_LINES, fd: int = 2) -> None:
        self.patterns, self.fd = patterns, fd
        self._saved: int | None = None
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def __enter__(self) -> "StderrFilter":
        if os.environ.get("XLM_ONNX_DEBUG"):
            return self
        self._flush()
        self._saved = os.dup(self.fd)
        read, write = os.pipe()
        os.dup2(write, self.fd)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, args=(read,), name="xlm-onnx-stderr", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is None:
            return
        self._flush()
        os.dup2(self._saved, self.fd)  # the pipe's last write end closes: the reader sees EOF
        self._thread.join(timeout=5)
        os.close(self._saved)
        self._saved = None

    def _flush(self) -> None:
        (sys.stdout if self.fd == 1 else sys.stderr).flush()

    def _pump(self, read: int) -> None:
        out, pending = self._saved, b""
        with os.fdopen(read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._emit(out, line + b"\n")
                if len(pending) > _MAX_LINE:
                    self._emit(out, pending)
                    pending = b""
        if pending:
            self._emit(out, pending)

    def _emit(self, out: int, line: bytes) -> None:
        if any(p.search(line) for p in self.patterns):
            self.dropped += 1
            return
        while line:
            line = line[os.write(out, line):]
