"""Exception types of the runtime.

Every error the package raises on purpose derives from :class:`XLMOnnxError`, and also from
the built-in type a caller would naturally catch (``ValueError``), so ``except ValueError``
keeps working for code that does not know this package.
"""

import re


class XLMOnnxError(Exception):
    """Base class of every error raised on purpose by xlm-onnx."""


class ModelFormatError(XLMOnnxError, ValueError):
    """A model directory is missing a file, is corrupt, or has an unknown format version."""


class TokenizerFileError(XLMOnnxError, FileNotFoundError):
    """A tokenizer file (vocab.json, merges.txt, ...) is missing or unreadable."""


class InputError(XLMOnnxError, ValueError):
    """A request to the runtime is malformed (no mask token, too long, bad top_k, ...).

    Attributes:
        index: Position in ``inputs`` of the text at fault; ``None`` when the whole request is
            (a bad ``top_k``, ``targets`` or ``lang``). Lets a caller that feeds texts in chunks,
            such as the CLI, name the input line instead of the index inside its chunk.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class InputTypeError(InputError, TypeError):
    """An input or option of the wrong type (``None`` or ``123`` for a text, ``targets=[123]``).

    Both an :class:`InputError` (so a ``ValueError``, which transformers raises for these) and a
    ``TypeError`` (what Python raises for a wrong type): an ``except`` written for either catches it.
    """


def message_at(exc: Exception, where: str) -> str:
    """``exc``'s message on one line, its leading ``inputs[i]`` / ``texts[i]`` replaced by ``where``.

    For callers that feed texts in chunks or rows (the CLI names the input line, Ray the column):
    the index inside their chunk would point at the wrong text.
    """
    return re.sub(r"^(inputs|texts)\[\d+\]", where, " ".join(str(exc).split()))


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
                             f"pip install 'xlm-onnx[{extra}]'")


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
