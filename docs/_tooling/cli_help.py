"""mkdocs hook: replaces ``<!-- cli-help: COMMAND -->`` with the real ``xlm-onnx COMMAND --help``.

The reference page cannot drift from the parser: the text is the installed command's own output,
taken at build time (a fixed width, so the page does not depend on the terminal of whoever builds).
A command that fails to print its help fails the build.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- cli-help:(?P<args>[^>]*)-->$", re.MULTILINE)
WIDTH = "100"


def _help(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": WIDTH, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", *args, "--help"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise PluginError(f"xlm-onnx {' '.join(args)} --help failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.rstrip()


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    def replace(match: re.Match) -> str:
        return "```text\n" + _help(match.group("args").split()) + "\n```"

    return MARKER.sub(replace, markdown)
