"""``xlm-onnx serve`` as a child process on a loopback port: for tests, benchmarks and notebooks.

    with ServerProcess(model_dir, ["--max-wait-ms", "5"]) as server:
        urllib.request.urlopen(server.url + "/health")

Starts the real command (``python -m xlm_onnx serve ... --port 0``), reads the port it prints,
waits for ``/ready`` (the warm-up inference done), and stops it with SIGTERM (the graceful path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Sequence


class ServerProcess:
    """A running ``xlm-onnx serve`` child.

    Args:
        model_dir: Model directory (``None``: the embedded demo model).
        options: More ``serve`` options (``--max-batch-size 1``, ...).
        env: Extra environment variables.
        timeout: Seconds to wait for the server to be ready.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, options: Sequence[str] = (),
                 env: dict | None = None, timeout: float = 120.0) -> None:
        self.argv = [sys.executable, "-m", "xlm_onnx", "serve", *([str(model_dir)] if model_dir else []),
                     "--port", "0", *options]
        self.env = {**os.environ, **(env or {})}
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "ServerProcess":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        # stderr to a file: a pipe nobody reads would block a server that logs a lot.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                     env=self.env)
        line = self.proc.stdout.readline()  # "xlm-onnx: serving NAME (tasks) on http://HOST:PORT"
        if " on http://" not in line:
            self.proc.wait(timeout=30)
            raise RuntimeError(f"xlm-onnx serve did not start: {line.strip()} {self.stderr().strip()}")
        self.url = line.strip().rsplit(" on ", 1)[1]
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # still loading
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"xlm-onnx serve exited: {self.stderr().strip()}")
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"xlm-onnx serve was not ready after {self.timeout} s")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stderr(self) -> str:
        """What the server wrote to stderr so far."""
        self._stderr.seek(0)
        return self._stderr.read()

    def terminate(self) -> None:
        """Sends SIGTERM (the server drains what it accepted, then exits)."""
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> tuple[int, str]:
        """SIGTERM, wait; returns (exit status, stderr). Kills it if it does not stop in ``timeout``."""
        if self.proc is None:
            return 0, ""
        if self.proc.poll() is None:
            self.terminate()
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode, self.stderr()

