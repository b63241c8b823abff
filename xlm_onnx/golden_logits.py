"""The golden check of a fine-tuned head's graph (output ``logits``), as :func:`.golden.run_golden` runs it.

Its probes are not masked: the torch fp32 reference's logits of each probe row are what is gated::

    golden input_ids ─► graph ─► logits             max |Δ logit| vs golden; top-1 label agreement
                               (multiple choice, one logit per row: the choice picked among the rows)
                     ─► last_hidden_state ─mean─►   cosine vs golden embeddings

Batch invariance is measured as for masked LMs: each probe alone, in the stored batch, and all
reversed with 7 more padding positions; logits and hidden states must be bit-identical for a
per-row int8 directory.
"""

from __future__ import annotations

import numpy as np

from . import format as fmt


def _feed(golden) -> dict[str, np.ndarray]:
    feed = {fmt.INPUT_IDS: np.array(golden.input_ids, dtype=np.int64),
            fmt.ATTENTION_MASK: np.array(golden.attention_mask, dtype=np.int64)}
    if golden.langs is not None:
        feed[fmt.LANGS] = np.array(golden.langs, dtype=np.int64)
    return feed


def _per_row(session, feed: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    logits, hidden = session.run([fmt.LOGITS, fmt.LAST_HIDDEN_STATE], feed)
    lengths = feed[fmt.ATTENTION_MASK].sum(axis=1)
    # Per-token heads ([b, s, n]): padded positions hold whatever padding computes; only tokens count.
    return [(logits[i, :n] if logits.ndim == 3 else logits[i], hidden[i, :n]) for i, n in enumerate(lengths)]


def logits_drift(session, feed: dict[str, np.ndarray]) -> float:
    """Largest |difference| of any probe's logits or hidden states alone vs batched (0.0: identical)."""
    lengths = feed[fmt.ATTENTION_MASK].sum(axis=1)
    pad_id = fmt.PAD_ID  # padded positions are masked out: any id does

    def subset(order: list[int], width: int) -> dict[str, np.ndarray]:
        sub = {}
        for name, value in feed.items():
            block = np.full((len(order), width), pad_id if name == fmt.INPUT_IDS else 0, dtype=np.int64)
            for row, i in enumerate(order):
                block[row, :lengths[i]] = value[i, :lengths[i]]
            sub[name] = block
        return sub

    batched = _per_row(session, feed)
    order = list(range(len(lengths)))[::-1]
    reversed_ = _per_row(session, subset(order, int(lengths.max()) + 7))
    drift = 0.0
    for i in range(len(lengths)):
        alone = _per_row(session, subset([i], int(lengths[i])))[0]
        for other in (batched[i], reversed_[order.index(i)]):
            for a, b in zip(alone, other):
                diff = np.abs(a.astype(np.float64) - b)
                if np.isnan(diff).any():
                    return float("nan")
                drift = max(drift, float(diff.max(initial=0.0)))
    return drift


def logits_figures(session, golden, tokenizer=None) -> dict:
    """Runs the probes through ``session``: the :class:`~xlm_onnx.golden.CheckReport` fields of a
    fine-tuned head (``max_abs_logit_delta``, ``top1_agreement``, ``min_embedding_cosine``,
    ``max_abs_batch_drift``, ``tokenizer_mismatches``, ``n_sentences``)."""
    from .pooling import pool

    feed = _feed(golden)
    logits, hidden = session.run([fmt.LOGITS, fmt.LAST_HIDDEN_STATE], feed)
    ref = np.array(golden.logits, dtype=np.float64)
    if ref.ndim == 3:  # per-token heads: the tokens of every row, padding left out
        tokens = feed[fmt.ATTENTION_MASK].astype(bool)
        logits, ref = logits[tokens], ref[tokens]
    delta = float(np.abs(logits - ref).max()) if ref.size else 0.0
    if ref.shape[1:] == (1,):  # multiple choice: the rows are the choices of one question
        agreement = float(np.argmax(logits[:, 0]) == np.argmax(ref[:, 0]))
    else:
        agreement = float(np.mean(np.argmax(logits, axis=1) == np.argmax(ref, axis=1)))
    ours = pool(hidden, feed[fmt.ATTENTION_MASK], "mean", normalize=True)
    emb = np.array(golden.embeddings, dtype=np.float64)
    cosine = float(np.min(np.sum(ours * (emb / np.linalg.norm(emb, axis=1, keepdims=True)), axis=1)))
    mismatches = 0
    if tokenizer is not None:
        mismatches = sum(tokenizer.encode(t) != ids for t, ids in zip(golden.texts, golden.token_ids))
    return {"n_sentences": len(golden.texts), "max_abs_logit_delta": delta, "top1_agreement": agreement,
            "min_embedding_cosine": cosine, "max_abs_batch_drift": logits_drift(session, feed),
            "tokenizer_mismatches": int(mismatches)}
