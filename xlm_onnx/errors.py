"""Exception types of the runtime.

Every error the package raises on purpose derives from :class:`XLMOnnxError`, and also from
the built-in type a caller would naturally catch (``ValueError``), so ``except ValueError``
keeps working for code that does not know this package.
"""

from dataclasses import dataclass
from typing import Any, Callable


class XLMOnnxError(Exception):
    """Base class of every error raised on purpose by xlm-onnx."""


class ModelFormatError(XLMOnnxError, ValueError):
    """A model directory is missing a file, is corrupt, or has an unknown format version."""


class TokenizerFileError(XLMOnnxError, FileNotFoundError):
    """A tokenizer file (vocab.json, merges.txt, ...) is missing or unreadable."""


class InputError(XLMOnnxError, ValueError):
    """A request to the runtime is malformed (no mask token, too long, bad top_k, ...).

    The message names what was wrong in the Python API's words (``inputs[3] is 300 tokens long
    ...; pass truncation=True to cut it``). A front end that speaks other words (the command
    line's ``line 7`` and ``--truncation``, a JSON route's field) builds its own from the parts
    with :meth:`say`, never by rewriting the text.

    Attributes:
        index: Position in ``inputs`` of the text at fault; ``None`` when the whole request is
            (a bad ``top_k``, ``targets`` or ``lang``). Lets a caller that feeds texts in chunks,
            such as the CLI, name the input line instead of the index inside its chunk.
        field: The argument at fault (``inputs``, ``top_k``, ...), ``None`` if not one argument.
        reason: The message after its subject (``field`` or ``field[index]``), when built by
            :meth:`about`.
        fix: The option that would have made the request valid (:class:`Fix`), if one would.
    """

    def __init__(self, message: str, index: int | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.reason: str | None = None
        self.fix: Fix | None = None

    @classmethod
    def about(cls, field: str, reason: str, index: int | None = None, fix: "Fix | None" = None):
        """The error ``"{field}[{index}] {reason} ({fix})"`` with its parts kept for :meth:`say`."""
        exc = cls(_compose(_subject(field, index), reason, fix and fix.say()), index, field=field)
        exc.reason, exc.fix = reason, fix
        return exc

    def at(self, index: int) -> "InputError":
        """This error about the text at ``index`` of the caller's list (a text answered on its own
        is ``inputs[0]`` to the task); itself when it is not about one text."""
        if self.index is None or self.reason is None or type(self) not in (InputError, InputTypeError):
            return self
        return type(self).about(self.field, self.reason, index, self.fix)

    def say(self, where: str | None = None, fix: "Callable[[Fix], str | None] | None" = None) -> str:
        """The message on one line, in a front end's words.

        Args:
            where: Replaces the subject (``inputs[3]``) of a message built by :meth:`about`:
                ``"line 7"``, ``"text"`` (a bulk column), ``"input[3]"`` (a JSON field).
            fix: How that front end spells :attr:`fix` (``"pass --truncation to cut it"``); ``None``
                from it, or no ``fix``: :meth:`Fix.say`.
        """
        if self.reason is None:
            return " ".join(str(self).split())
        subject = where if where is not None else _subject(self.field, self.index)
        hint = self.fix and ((fix(self.fix) if fix else None) or self.fix.say())
        return _compose(subject, self.reason, hint)


class InputTypeError(InputError, TypeError):
    """An input or option of the wrong type (``None`` or ``123`` for a text, ``targets=[123]``, a
    float ``top_k``).

    Both an :class:`InputError` (so a ``ValueError``, which transformers raises for these) and a
    ``TypeError`` (what Python raises for a wrong type): an ``except`` written for either catches it.
    """


@dataclass(frozen=True)
class Fix:
    """The option that makes a refused request valid: ``pass truncation=True to cut it``.

    Attributes:
        option: The option's name (the API's keyword).
        value: The value to give it.
        effect: What it does (``to cut it``).
    """

    option: str
    value: Any
    effect: str

    def say(self) -> str:
        """The Python API's words: ``pass truncation=True to cut it``."""
        return f"pass {self.option}={self.value!r} {self.effect}"


def _subject(field: str | None, index: int | None) -> str:
    return f"{field}[{index}]" if index is not None else (field or "")


def _compose(subject: str, reason: str, hint: str | None) -> str:
    return f"{subject} {reason}".strip() + (f" ({hint})" if hint else "")


class LimitError(InputError):
    """A request asks for more than a :class:`~xlm_onnx.limits.RequestLimits` allows (the server answers 413).

    Attributes:
        limit: The limit's name (a ``RequestLimits`` field; the server's flag is the same with dashes).
        value: What the request asks for.
        allowed: The limit.
    """

    def __init__(self, limit: str, value: int, allowed: int, what: str) -> None:
        super().__init__(f"this request asks for {value:,} {what}; the limit is {allowed:,} ({limit})")
        self.limit, self.value, self.allowed = limit, value, allowed


class HTTPError(XLMOnnxError):
    """An HTTP request refused with ``status`` and a one-line message (a bad body, a missing key, ...).

    Attributes:
        status: The HTTP status (it overrides the :data:`ERRORS` table's).
        headers: Response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class QueueFull(XLMOnnxError):
    """A server's bounded queue is full (429 with ``Retry-After``): retry shortly."""


def json_error(exc: ValueError) -> str:
    """A ``json.JSONDecodeError`` as ``"<reason> at column N"``: its ``msg`` often ends in "at"
    already ("Unterminated string starting at"), which a plain ``f"{msg} at column"`` doubles."""
    reason = getattr(exc, "msg", None) or str(exc)
    reason = reason[:-3] if reason.endswith(" at") else reason
    column = getattr(exc, "colno", None)
    return f"{reason} at column {column}" if column else reason


class MissingExtraError(XLMOnnxError, ImportError):
    """A command or module needs an optional extra that is not installed (the message says which)."""


def missing_extra(extra: str, missing: str, what: str = "this command") -> MissingExtraError:
    """The one message for a missing extra: what needs it, what is missing, how to install it."""
    return MissingExtraError(f"{what} needs the [{extra}] extra ({missing} is not installed): "
                             f"pip install '.[{extra}]' in the xlm-onnx repository")


def require_extra(extra: str, modules: tuple[str, ...], what: str = "this command") -> None:
    """Raises :func:`missing_extra` for the first of ``modules`` that cannot be imported, before
    anything slow starts (the modules are looked up, not imported)."""
    import importlib.util

    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or set to None in sys.modules
            found = False
        if not found:
            raise missing_extra(extra, name, what)


class ModelNotFoundError(XLMOnnxError, FileNotFoundError):
    """A model given by path or Hugging Face id is neither a directory nor in the local HF cache."""


class PrecisionWarning(UserWarning):
    """A model will run, but less exactly on this machine than it did at export (see ``xlm-onnx check``)."""


# -- the one error table -------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """How every front end answers an exception type (:data:`ERRORS`).

    Attributes:
        status: The HTTP status (an :class:`HTTPError` carries its own).
        exit_code: The command line's exit status: 2 for what the user can fix (one line, no
            traceback), 1 for an internal error, 130 for an interrupt.
        kind: The JSON error's ``error_type`` (TEI's words), from the status.
    """

    status: int
    exit_code: int

    @property
    def kind(self) -> str:
        return STATUS_KINDS.get(self.status, "Error")

    @property
    def internal(self) -> bool:
        """Not the user's to fix: the command line says ``internal error (Type)``."""
        return self.exit_code == 1


#: ``error_type`` of a JSON error by HTTP status, as TEI names them.
STATUS_KINDS = {401: "Unauthorized", 404: "NotFound", 408: "Timeout", 413: "Validation", 422: "Validation",
                429: "Overloaded", 500: "Backend", 503: "Unhealthy"}

#: Exception type -> :class:`Outcome`, most specific first; :func:`outcome` takes the first row
#: the exception is an instance of. Every error raised on purpose is in the XLMOnnxError tree;
#: the built-in rows are for what other code raises (``json``, ``open``, numpy).
ERRORS: tuple[tuple[type[BaseException], Outcome], ...] = (
    (HTTPError, Outcome(400, 2)),  # the status is the exception's own
    (QueueFull, Outcome(429, 2)),
    (LimitError, Outcome(413, 2)),  # more work than the server's per-request limits
    (InputError, Outcome(422, 2)),  # InputTypeError too
    (ModelFormatError, Outcome(422, 2)),  # a request needs a head this model lacks (format 1)
    (TokenizerFileError, Outcome(500, 2)),
    (ModelNotFoundError, Outcome(500, 2)),
    (MissingExtraError, Outcome(500, 2)),
    (XLMOnnxError, Outcome(500, 2)),
    (ValueError, Outcome(422, 2)),  # TypeError/ValueError of other code validating a value
    (TypeError, Outcome(422, 2)),
    (OSError, Outcome(500, 2)),  # a file the user named cannot be read or written
    (NotImplementedError, Outcome(500, 2)),
    (KeyboardInterrupt, Outcome(500, 130)),
    (BaseException, Outcome(500, 1)),  # a bug: the command line says "internal error (Type)"
)


def outcome(exc: BaseException) -> Outcome:
    """The :class:`Outcome` of ``exc`` (see :data:`ERRORS`)."""
    for kind, result in ERRORS:
        if isinstance(exc, kind):
            return Outcome(exc.status, result.exit_code) if isinstance(exc, HTTPError) else result
    raise AssertionError("unreachable: BaseException matches every exception")


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (its type's name when it has none)."""
    return (exc.say() if isinstance(exc, InputError) else " ".join(str(exc).split())) or type(exc).__name__
