"""Command-line options, defined once: a task's parameters as flags, the model, the runtime.

Every parser of ``xlm-onnx`` is a :class:`Parser`: ``--help`` shows every option's default, and a
mistake (an unknown flag, a bad value) is one line and exit 2, with the closest flag when one is
close (``--topk`` → ``did you mean --top-k?``).
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any, Iterable, NoReturn

from ..tasks.params import CLI, Param, Params, closest

MODEL_WHERE = "directory, Hugging Face cache folder (models--org--name) or cached model id (org/name)"


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: ...)`` to every option whose help does not say its default already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default is argparse.SUPPRESS
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))):
            return text
        default = action.default
        shown = "none" if default is None else "off" if default is False else "on" if default is True else "%(default)s"
        return f"{text} (default: {shown})".strip()


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (exit 2) and that suggests the flag meant."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        flags = [a for a in extras if a.startswith("-") and a != "-"]
        if flags:  # here, where this (sub)command's own flags are known: the closest one
            close = closest(flags[0].split("=", 1)[0], [s for s in self._option_string_actions if s.startswith("--")])
            hint = f"; did you mean {close}?" if close else f"; see {self.prog} --help"
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"xlm-onnx: error: {self.prog.removeprefix('xlm-onnx').strip() or 'xlm-onnx'}: "
                     f"{' '.join(message.split())}\n")


def add_model(parser: argparse.ArgumentParser, *, flag: bool = True, required: bool = False,
              where: str = MODEL_WHERE) -> None:
    """``--model MODEL`` (``flag``) or a ``MODEL`` argument, and ``--revision``."""
    if flag:
        parser.add_argument("--model", metavar="MODEL", help=f"model {where} (default: the embedded demo model)")
    else:
        parser.add_argument("model", metavar="MODEL", nargs=None if required else "?",
                            help=f"model {where}" + ("" if required else " (default: the embedded demo model)"))
    parser.add_argument("--revision", help="branch, tag or commit of a cached model (default: main); never downloads")


def add_runtime(parser: argparse.ArgumentParser) -> None:
    """``--provider`` and ``--threads`` (:meth:`Model.load <xlm_onnx.model.Model.load>`)."""
    parser.add_argument("--provider", default="cpu", help="cpu, cuda or tensorrt")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: ORT's choice)")


def add_params(parser: argparse.ArgumentParser, params: Iterable[Param]) -> None:
    """One flag per parameter (``dest`` is the parameter's name), its default the schema's.

    ``bool``: a switch (``--no-...`` too when it is on by default); ``list``: a repeated flag (and
    its deprecated comma-separated :attr:`~xlm_onnx.tasks.params.Param.csv_flag`); ``int``,
    ``float``, ``str``: a value, with its choices.
    """
    for p in params:
        common = {"dest": p.name, "help": p.help}
        if p.type is bool:
            action = argparse.BooleanOptionalAction if p.default else "store_true"
            parser.add_argument(p.cli_flag, action=action, default=bool(p.default), **common)
        elif p.type is list:
            parser.add_argument(p.cli_flag, action="append", metavar=p.metavar, default=p.default, **common)
            if p.csv_flag:
                parser.add_argument(p.csv_flag, dest=f"{p.name}__csv", metavar=f"{p.metavar or 'V'}1,...",
                                    help=f"deprecated: comma-separated values; use {p.cli_flag}")
        else:
            parser.add_argument(p.cli_flag, type=p.type, choices=p.choices, metavar=p.metavar, default=p.default,
                                **common)


def param_values(args: argparse.Namespace, params: Params, front: str = CLI) -> dict[str, Any]:
    """The parsed flags of :func:`add_params` as the task's keyword arguments (``Task.options``)."""
    values = {p.name: getattr(args, p.name) for p in params.on(front)}
    for p in params.on(front):
        given = getattr(args, f"{p.name}__csv", None) if p.csv_flag else None
        if given is not None:  # one value: as nargs="+" it once swallowed the texts after it
            warnings.warn(f"{p.csv_flag} is deprecated; it takes one comma-separated value ({p.csv_flag} la,de); "
                          f"use {p.cli_flag} {p.metavar or 'VALUE'} once per {p.metavar.lower() if p.metavar else 'value'}",
                          FutureWarning, stacklevel=2)
            listed = [w for w in given.split(",") if w]
            if not listed:
                raise ValueError(f"{p.csv_flag} {given!r} names no {(p.metavar or 'value').lower()}")
            values[p.name] = list(values[p.name] or []) + listed
    return values


def flag_of(params: Params, name: str) -> str:
    """The command-line flag of option ``name`` (``--top-k``), or ``name`` if it has none."""
    return params[name].cli_flag if name in params else name
