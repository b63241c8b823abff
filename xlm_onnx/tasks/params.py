"""A task's parameters, declared once: the only place their names, types, defaults and help live.

Each task lists its request options as :class:`Param` entries in its ``params`` attribute; every
front end is generated from that list and from nothing else::

    Param("top_k", int, 5, "predictions per mask", minimum=1, metavar="K")
      ─ Python API   task(inputs, top_k=5)        Task.options(**Params.resolve(values))
      ─ command line xlm-onnx fill-mask --top-k K  (default 5)        (xlm_onnx.cli.params)
      ─ JSON body    {"inputs": ..., "top_k": 5}   422 naming "top_k" (Params.resolve)
      ─ bulk job     xlm-onnx bulk fill-mask --top-k K                (xlm_onnx.cli.params)

A dataclass rather than pydantic or msgspec: the runtime keeps its dependencies to numpy,
onnxruntime and sacremoses, the schema has five types (``int``, ``float``, ``str``, ``bool``,
a list of ``str``), and the messages must be the Python API's own (``top_k must be ...``), which a
schema library would word its own way. The module imports nothing but the standard library, so
the command line can build its parsers from it before numpy or a model loads.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from ..errors import InputError, InputTypeError

#: The front ends a parameter appears in (``Param.fronts``).
CLI, JSON, BULK = "cli", "json", "bulk"
EVERYWHERE = frozenset({CLI, JSON, BULK})
#: The types a :class:`Param` may have (``list`` is a list of str; a str is taken as a one-item list).
TYPES = (int, float, str, bool, list)
_TYPE_WORDS = {int: "an int", float: "a number", str: "a str", bool: "a bool", list: "a str or a list of str"}


@dataclass(frozen=True)
class Param:
    """One request option of a task.

    Attributes:
        name: The Python API's keyword and the JSON body's field (``top_k``); the command line's
            flag is ``--top-k`` unless :attr:`flag` says otherwise.
        type: ``int``, ``float``, ``str``, ``bool`` or ``list`` (of str).
        default: The value when the option is not given (``None``: not set).
        help: One line for ``--help`` and the reference pages (the default is added there).
        choices: The allowed values, if only some are.
        minimum: Smallest allowed number (``int``/``float``).
        maximum: Largest allowed number (``int``/``float``).
        flag: The command line's flag (a ``list`` option is repeated: ``--target WORD --target ...``).
        metavar: The value's name in ``--help``.
        csv_flag: A deprecated command-line flag that takes the list as one comma-separated value
            (``list`` options only; it warns when used).
        fronts: Where the option appears (:data:`CLI`, :data:`JSON`, :data:`BULK`); the Python API
            takes every option.
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    flag: str | None = None
    metavar: str | None = None
    csv_flag: str | None = None
    fronts: frozenset = EVERYWHERE

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise TypeError(f"Param {self.name!r}: type must be one of int, float, str, bool, list, not {self.type!r}")
        if self.default is not None:
            self.validate(self.default)  # a default the schema refuses is a bug in the task, found at import

    @property
    def cli_flag(self) -> str:
        """``--top-k`` for ``top_k`` (or :attr:`flag`)."""
        return self.flag or "--" + self.name.replace("_", "-")

    def validate(self, value: Any) -> Any:
        """``value`` if it is valid for this option (a str as a one-item list for ``list``).

        Raises:
            InputTypeError: Wrong type (``"true"`` is not a bool, ``1.5`` not an int), naming the option.
            InputError: Not one of :attr:`choices`, or out of bounds, naming the option.
        """
        if value is None:
            return None
        value = self._typed(value)
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{self.name} must be one of {tuple(self.choices)}, not {value!r}", field=self.name)
        if self.minimum is not None and value < self.minimum:
            raise InputError(f"{self.name} must be at least {self.minimum}, not {value!r}", field=self.name)
        if self.maximum is not None and value > self.maximum:
            raise InputError(f"{self.name} must be at most {self.maximum}, not {value!r}", field=self.name)
        return value

    def _typed(self, value: Any) -> Any:
        ok = {bool: lambda v: isinstance(v, bool),
              int: lambda v: isinstance(v, int) and not isinstance(v, bool),
              float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              str: lambda v: isinstance(v, str),
              list: lambda v: isinstance(v, str) or isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)}
        if not ok[self.type](value):
            raise InputTypeError(f"{self.name} must be {_TYPE_WORDS[self.type]}, not {type(value).__name__}",
                                 field=self.name)
        if self.type is float:
            return float(value)
        if self.type is list:
            return [value] if isinstance(value, str) else list(value)
        return value


@dataclass(frozen=True, init=False)
class Params:
    """A task's options, in the order ``--help`` and the reference pages list them.

    ``Params(*a) + Params(*b)`` joins two lists (a later entry replaces an earlier one of the same
    name, so a task can change a shared option's default or help).
    """

    items: tuple[Param, ...] = field(default=())

    def __init__(self, *items: Param) -> None:
        merged: dict[str, Param] = {}
        for item in items:
            merged[item.name] = item
        object.__setattr__(self, "items", tuple(merged.values()))

    def __add__(self, other: "Params") -> "Params":
        return Params(*self.items, *other.items)

    def __iter__(self) -> Iterator[Param]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.items)

    def __getitem__(self, name: str) -> Param:
        for p in self.items:
            if p.name == name:
                return p
        raise KeyError(name)

    def names(self) -> list[str]:
        return [p.name for p in self.items]

    def default(self, name: str) -> Any:
        """The default of option ``name`` (for the Python API's signatures)."""
        return self[name].default

    def defaults(self) -> dict[str, Any]:
        """Every option's default: the keyword arguments of a request that sets none."""
        return {p.name: p.default for p in self.items}

    def on(self, front: str) -> list[Param]:
        """The options that appear in ``front`` (:data:`CLI`, :data:`JSON` or :data:`BULK`)."""
        return [p for p in self.items if front in p.fronts]

    def resolve(self, values: Mapping[str, Any], front: str | None = None) -> dict[str, Any]:
        """``values`` checked and completed with the defaults: the keyword arguments of ``Task.options``.

        Args:
            values: Given options by name (a JSON body's fields, a bulk job's options); ``None``
                values count as not given.
            front: Only the options of this front are known (``None``: all).

        Raises:
            InputError: An unknown option (naming the closest known one), or a value the option
                refuses (:meth:`Param.validate`), naming it.
        """
        known = {p.name: p for p in (self.items if front is None else self.on(front))}
        unknown(values, known)
        out = self.defaults() if front is None else {p.name: p.default for p in known.values()}
        for name, value in values.items():
            if value is not None:
                out[name] = known[name].validate(value)
        return out


def unknown(given: Iterable[str], known: Iterable[str], what: str = "option") -> None:
    """Raises :class:`InputError` for the first of ``given`` not in ``known``, with the closest
    known name when one is close (``topk`` → ``did you mean 'top_k'?``)."""
    known = list(known)
    for name in given:
        if name not in known:
            close = closest(name, known)
            hint = f"; did you mean {close!r}?" if close else ""
            raise InputError(f"unknown {what} {name!r}{hint}; known: {', '.join(known) or 'none'}", field=name)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name``, if one is close; ``-``/``_``, leading dashes and case do
    not count (``topk``, ``--top_k`` and ``Top-K`` all find ``top_k`` or ``--top-k``)."""
    def norm(s: str) -> str:
        return s.lower().lstrip("-").replace("-", "").replace("_", "")

    by_norm = {norm(k): k for k in known}
    close = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.75)
    return by_norm[close[0]] if close else None


#: The options every text task takes (``Task.params`` by default).
TEXT = Params(
    Param("lang", str, None, "language code, for models with language embeddings", metavar="LANG"),
    Param("truncation", bool, False, "cut texts longer than the model maximum"),
)
