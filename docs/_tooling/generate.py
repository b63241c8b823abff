"""mkdocs hook: pages that cannot drift from the code, because the code writes them at build time.

* ``<!-- cli-help: COMMAND -->`` becomes the installed ``xlm-onnx COMMAND --help`` (at a fixed width,
  so the page does not depend on the terminal of whoever builds it);
* ``<!-- cli-help-tasks -->`` becomes a ``## TASK`` section with ``xlm-onnx TASK --help`` for every
  registered task (the built-in ones and those of installed packages' entry points);
* ``<!-- task-reference -->`` becomes a section per registered task: its options as the task
  declares them (:mod:`xlm_onnx.tasks.params`: type, default, choices, where each appears), its
  command line and its bulk job's ``--help``;
* ``<!-- error-table -->`` becomes :data:`xlm_onnx.errors.ERRORS`, the one table of HTTP statuses
  and exit codes;
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
CLI_TASKS = re.compile(r"^<!-- cli-help-tasks -->$", re.MULTILINE)
TASK_REFERENCE = re.compile(r"^<!-- task-reference -->$", re.MULTILINE)
ERROR_TABLE = re.compile(r"^<!-- error-table -->$", re.MULTILINE)
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


def _cli_tasks() -> str:
    from xlm_onnx.tasks import registry

    return "\n\n".join(f"## {name}\n\n{_help([name])}" for name in registry.names())


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def _param_table(params) -> str:
    rows = ["| option | type | default | allowed | command line | JSON field | bulk | what it does |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in params:
        allowed = ", ".join(map(str, p.choices)) if p.choices else " ".join(
            f for f in (p.minimum is not None and f">= {p.minimum}", p.maximum is not None and f"<= {p.maximum}") if f)
        kind = "list of str" if p.type is list else p.type.__name__
        where = {front: ("yes" if front in p.fronts else "no") for front in ("cli", "json", "bulk")}
        rows.append(f"| `{p.name}` | {kind} | `{p.default!r}` | {_cell(allowed)} | "
                    f"{'`' + p.cli_flag + '`' if where['cli'] == 'yes' else 'no'} | "
                    f"{'`' + p.name + '`' if where['json'] == 'yes' else 'no'} | {where['bulk']} | {_cell(p.help)} |")
    return "\n".join(rows)


def _task_reference() -> str:
    from xlm_onnx.tasks import registry

    out = []
    for name in registry.names():
        cls = registry.task_class(name)
        out.append(f"## {name}\n\n{cls.summary or cls.purpose} (`{cls.__module__}.{cls.__qualname__}`).\n\n"
                   f"{_param_table(cls.params)}\n\n### xlm-onnx {name}\n\n{_help([name])}\n\n"
                   f"### xlm-onnx bulk {name}\n\n{_help(['bulk', name])}")
    return "\n\n".join(out)


def _error_table() -> str:
    from xlm_onnx.errors import ERRORS, HTTPError

    rows = ["| exception (first match, most specific first) | HTTP status | `error_type` | exit code |",
            "| --- | --- | --- | --- |"]
    for kind, result in ERRORS:
        status = "its own `status`" if kind is HTTPError else str(result.status)
        error_type = "by status" if kind is HTTPError else f"`{result.kind}`"
        name = f"`{kind.__module__}.{kind.__qualname__}`".replace("`builtins.", "`")
        rows.append(f"| {name} | {status} | {error_type} | {result.exit_code} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    markdown = ERROR_TABLE.sub(lambda m: _error_table(), markdown)
    markdown = CLI_HELP.sub(lambda m: _help(m.group("args").split()), markdown)
    markdown = CLI_TASKS.sub(lambda m: _cli_tasks(), markdown)
    markdown = TASK_REFERENCE.sub(lambda m: _task_reference(), markdown)
    return MODEL_CARD.sub(lambda m: _card(m.group("name")), markdown)
