"""Argument checks every entry point shares, so the same mistake gets the same message everywhere."""

from __future__ import annotations

from typing import Any, Sequence

from .errors import InputError, InputTypeError


def text_list(value: Any, name: str) -> tuple[Sequence[Any], bool]:
    """``(texts, single)``: a str as a one-item list, or the list/tuple itself.

    Raises:
        InputTypeError: ``value`` is neither a str nor a list/tuple.
        InputError: It is an empty list.
    """
    single = isinstance(value, str)
    texts = [value] if single else value
    if not isinstance(texts, (list, tuple)):
        raise InputTypeError.about(name, f"must be a str or a list of str, not {type(value).__name__}")
    if not texts:
        raise InputError.about(name, "is an empty list")
    return texts, single


def require_bool(name: str, value: Any) -> None:
    """Raises TypeError unless ``value`` is a bool (``1`` or ``"yes"`` are mistakes, not flags)."""
    if not isinstance(value, bool):
        raise InputTypeError(f"{name} must be a bool, not {type(value).__name__}", field=name)


def positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    """Raises ValueError unless ``value`` is an int >= 1 (or ``None`` when allowed); bools are not ints here."""
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive int{' or None' if allow_none else ''}, not {value!r}", field=name)


def one_of(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raises ValueError unless ``value`` is one of ``choices`` (naming them)."""
    if value not in choices:
        raise InputError(f"{name} must be one of {tuple(choices)}, not {value!r}", field=name)
