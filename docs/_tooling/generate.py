"""mkdocs hook: pages that cannot drift from the code, because the code writes them at build time.

* ``<!-- cli-help: COMMAND -->`` becomes the installed ``xlm-onnx COMMAND --help`` (at a fixed width,
  so the page does not depend on the terminal of whoever builds it);
* ``<!-- model-card: NAME -->`` becomes the card ``xlm-onnx export`` writes
  (``xlm_onnx_export.model_card``), rendered from the embedded demo model's manifest.

A command that fails fails the build.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from mkdocs.exceptions import PluginError

CLI_HELP = re.compile(r"^<!-- cli-help:(?P<args>[^>]*)-->$", re.MULTILINE)
MODEL_CARD = re.compile(r"^<!-- model-card:\s*(?P<name>\S+)\s*-->$", re.MULTILINE)
WIDTH = "100"


def _help(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": WIDTH, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", *args, "--help"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise PluginError(f"xlm-onnx {' '.join(args)} --help failed ({proc.returncode}): {proc.stderr.strip()}")
    return "```text\n" + proc.stdout.rstrip() + "\n```"


def _card(name: str) -> str:
    import xlm_onnx
    from xlm_onnx import format as fmt
    from xlm_onnx_export.model_card import render_model_card

    demo = xlm_onnx.default_model_dir()
    card = render_model_card(fmt.read_manifest(demo), demo, None, name=name)
    return "````markdown\n" + card.rstrip() + "\n````"


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    markdown = CLI_HELP.sub(lambda m: _help(m.group("args").split()), markdown)
    return MODEL_CARD.sub(lambda m: _card(m.group("name")), markdown)
