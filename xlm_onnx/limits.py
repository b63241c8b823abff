"""Per-request work limits: what one call may make the model do, computed before it runs.

A small request can ask for a lot: 20 masks with ``top_k`` = the vocabulary is a 120 MB answer,
200 masks x 500 whole-word targets is 100,000 filled rows, one 254-token text to ``/score`` is
252 masked copies. Each task's ``prepare`` (validation and tokenizing, the step before any model
run) computes a :class:`Cost` from the encoded request and checks it against
:class:`RequestLimits`::

    prepare: tokenize ─► Cost(rows, longest, copies, predictions, response_bytes) ─► enforce ─► run
                                                                     over a limit: LimitError (413)

The limits are off in the Python API unless set (``task.request_limits = RequestLimits()``: a library
caller asking for a big job usually means it) and on in ``xlm-onnx serve`` (its ``--max-request-
tokens``, ``--max-copies``, ``--max-predictions``, ``--max-response-bytes``). The server also
counts each admitted request's padded tokens against its queue budget (``--max-queue-tokens``).
Defaults and what they cost are in ``docs/reference/limits.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import LimitError  # noqa: F401  (public here since it was defined here)

#: JSON bytes of one fill-mask prediction besides its ``sequence`` ("score", "token", "token_str",
#: keys and punctuation), rounded up from answers of the demo model.
PREDICTION_BYTES = 96
#: Most UTF-8 bytes a token decodes to, for estimates (XLM's pieces are rarely over 5 characters
#: of at most 3 bytes).
TOKEN_BYTES = 16
#: JSON bytes of one float of an embedding (``-0.012345678901234567, ``).
FLOAT_BYTES = 24
#: JSON bytes of one per-token PLL record (token, id, log-prob).
TOKEN_RECORD_BYTES = 48


@dataclass(frozen=True)
class RequestLimits:
    """The most work one request may ask for (``None``: no limit on that measure).

    Attributes:
        max_request_tokens: Padded tokens the request runs: its model rows (masked copies
            included) x the longest of them.
        max_copies: Masked copies: one per scored token for scoring (PLL), one per target piece
            per mask for whole-word targets.
        max_predictions: Predictions in a fill-mask answer: masks x ``top_k`` (x targets for
            whole-word targets, up to ``top_k``).
        max_response_bytes: Estimated size of the answer as JSON.
    """

    max_request_tokens: int | None = 65_536
    max_copies: int | None = 4_096
    max_predictions: int | None = 4_096
    max_response_bytes: int | None = 16 << 20


@dataclass(frozen=True)
class Cost:
    """What one prepared request will make the model do (see :class:`RequestLimits`).

    Attributes:
        rows: Model rows, masked copies included.
        longest: Tokens of the longest row, specials included.
        copies: Masked copies among the rows.
        predictions: Records in the answer (fill-mask), 0 otherwise.
        response_bytes: Estimated JSON size of the answer.
    """

    rows: int
    longest: int
    copies: int = 0
    predictions: int = 0
    response_bytes: int = 0

    @property
    def tokens(self) -> int:
        """Padded tokens: rows x longest (what a padded run computes, and the queue counts)."""
        return self.rows * self.longest


# In this order: the most specific measure names the cause (200 masks x 500 targets is too many
# copies, and therefore too many tokens too).
_MEASURES = (("max_predictions", "predictions", "predictions (masks x top_k)"),
             ("max_copies", "copies", "masked copies"),
             ("max_response_bytes", "response_bytes", "bytes of answer (estimated)"),
             ("max_request_tokens", "tokens", "padded tokens (model rows x the longest row, masked copies included)"))


def enforce(limits: RequestLimits | None, cost: Cost) -> Cost:
    """Returns ``cost`` if it is within ``limits`` (``None``: no limits).

    Raises:
        LimitError: Naming the first limit it exceeds.
    """
    if limits is not None:
        for name, measure, what in _MEASURES:
            allowed, value = getattr(limits, name), getattr(cost, measure)
            if allowed is not None and value > allowed:
                raise LimitError(name, value, allowed, what)
    return cost


def sequence_bytes(text: str, row: Sequence[int]) -> int:
    """Estimated UTF-8 bytes of ``row`` decoded (a prediction's ``sequence``): the text, plus a
    space or an expansion (an unknown character decodes to ``<unk>``) per token, and at most
    :data:`TOKEN_BYTES` per token (a text cut by truncation decodes to its kept tokens only)."""
    return min(len(text.encode("utf-8", "replace")) + 4 * len(row), TOKEN_BYTES * len(row))


def fill_mask_cost(rows: Sequence[Sequence[int]], texts: Sequence[str], mask_id: int, top_k: int,
                   n_targets: int | None = None, word_pieces: Sequence[int] | None = None) -> Cost:
    """The cost of a fill-mask request.

    Args:
        rows: Ids with specials of each text.
        texts: The texts (a prediction's ``sequence`` is its text again).
        mask_id: The mask token's id.
        top_k: Predictions asked per mask.
        n_targets: Distinct target ids (``None``: the whole vocabulary).
        word_pieces: For whole-word targets, each target's number of pieces.
    """
    masks = [row.count(mask_id) for row in rows]
    longest = max((len(r) for r in rows), default=0)
    choices = len(word_pieces) if word_pieces else n_targets
    k = top_k if choices is None else min(top_k, choices)
    answer = sum(m * k * (PREDICTION_BYTES + sequence_bytes(t, r)) for m, t, r in zip(masks, texts, rows))
    if word_pieces:  # one filled copy per (mask, target, piece), as long as the text plus the target
        copies = sum(masks) * sum(word_pieces)
        return Cost(copies, longest + max(word_pieces) - 1, copies, sum(masks) * k, answer)
    return Cost(len(rows), longest, 0, sum(masks) * k, answer)


def embed_cost(rows: Sequence[Sequence[int]], dim: int) -> Cost:
    """The cost of an embedding request: one row per text, ``dim`` floats each in the answer."""
    return Cost(len(rows), max((len(r) for r in rows), default=0), 0, 0, len(rows) * dim * FLOAT_BYTES)


def score_cost(rows: Sequence[Sequence[int]], copies: int, per_token: bool) -> Cost:
    """The cost of a scoring request: one masked copy per scored token, each as long as its text."""
    tokens = sum(max(len(r) - 2, 0) for r in rows)
    answer = tokens * TOKEN_RECORD_BYTES + len(rows) * PREDICTION_BYTES if per_token else len(rows) * FLOAT_BYTES
    return Cost(copies, max((len(r) for r in rows), default=0), copies, 0, answer)
