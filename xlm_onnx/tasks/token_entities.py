"""Per-token scores -> entities, with the semantics of transformers' ``token-classification`` pipeline.

Written from ``TokenClassificationPipeline.postprocess`` / ``aggregate`` / ``group_entities``
(transformers 4.x-5.x); what differs is only what a slow XLM tokenizer keeps the pipeline from
knowing, and this tokenizer knows (:mod:`xlm_onnx.tokenization.offsets`):

* ``start``/``end`` are character offsets into the original text (the pipeline gives ``None``
  without a fast tokenizer), and ``word`` is ``text[start:end]`` (the original characters, not
  the normalised, lowercased pieces);
* "is a sub-word" is "is not the first piece of its Moses word", so ``first``, ``average`` and
  ``max`` work (the pipeline refuses them without a fast tokenizer);

Strategies: ``none`` (one entity per token), ``simple`` (adjacent tokens of one tag merged, B-/I-
aware), ``first`` / ``average`` / ``max`` (one label per word, from its first piece, the mean of
its pieces' scores, or its most confident piece; then merged as ``simple``). ``ignore_labels``
drops entities by label (default ``["O"]``), after aggregation, as the pipeline does. A text
longer than the model is read in windows overlapping by ``stride`` pieces (the pipeline's
``stride``), each decoded on its own, then overlapping entities merged (:func:`merge_overlapping`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

STRATEGIES = ("none", "simple", "first", "average", "max")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the pipeline's shifted-exp formula)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _tokens(scores: np.ndarray, offsets, word_ids) -> list[dict[str, Any]]:
    """The pipeline's ``pre_entities``: one per text token (``index`` counts ``<s>`` as 0)."""
    out = []
    for i, (span, word) in enumerate(zip(offsets, word_ids)):
        first = i == 0 or word_ids[i - 1] != word
        out.append({"scores": scores[i], "index": i + 1, "start": span[0], "end": span[1], "is_subword": not first})
    return out


def _labelled(token: dict, labels: Sequence[str], text: str) -> dict[str, Any]:
    best = int(token["scores"].argmax())
    return {"entity": labels[best], "score": float(token["scores"][best]), "index": token["index"],
            "word": text[token["start"] : token["end"]], "start": token["start"], "end": token["end"]}


def _word(pieces: list[dict], strategy: str, labels: Sequence[str], text: str) -> dict[str, Any]:
    """``aggregate_word``: one entity for the pieces of one word."""
    if strategy == "first":
        scores = pieces[0]["scores"]
    elif strategy == "max":
        scores = max(pieces, key=lambda p: p["scores"].max())["scores"]
    else:  # average
        scores = np.nanmean(np.stack([p["scores"] for p in pieces]), axis=0)
    best = int(scores.argmax())
    start, end = pieces[0]["start"], pieces[-1]["end"]
    return {"entity": labels[best], "score": float(scores[best]), "word": text[start:end], "start": start, "end": end}


def _words(tokens: list[dict], strategy: str, labels: Sequence[str], text: str) -> list[dict]:
    out, group = [], []
    for token in tokens:
        if group and not token["is_subword"]:
            out.append(_word(group, strategy, labels, text))
            group = []
        group.append(token)
    if group:
        out.append(_word(group, strategy, labels, text))
    return out


def _tag(label: str) -> tuple[str, str]:
    """``get_tag``: ("B" | "I", tag); a label without a B-/I- prefix continues (I)."""
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def _group(members: list[dict], text: str) -> dict[str, Any]:
    """``group_sub_entities``: label without its prefix, mean score, first start to last end."""
    start, end = members[0]["start"], members[-1]["end"]
    return {"entity_group": members[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([m["score"] for m in members])),
            "word": text[start:end], "start": start, "end": end}


def group_entities(entities: list[dict], text: str) -> list[dict]:
    """Merges adjacent entities of one tag unless the next one begins (``B-``) a new entity."""
    groups, current = [], []
    for entity in entities:
        if current:
            bi, tag = _tag(entity["entity"])
            if not (tag == _tag(current[-1]["entity"])[1] and bi != "B"):
                groups.append(_group(current, text))
                current = []
        current.append(entity)
    if current:
        groups.append(_group(current, text))
    return groups


def merge_overlapping(found: list[dict]) -> list[dict]:
    """``aggregate_overlapping_entities``: of entities that overlap (windows of a long text), keep
    the longer span, or on a tie the higher score; in order of ``start``."""
    if not found:
        return found
    found = sorted(found, key=lambda e: e["start"])
    out, previous = [], found[0]
    for entity in found[1:]:
        if previous["start"] <= entity["start"] < previous["end"]:
            longer = entity["end"] - entity["start"] - (previous["end"] - previous["start"])
            if longer > 0 or (longer == 0 and entity["score"] > previous["score"]):
                previous = entity
        else:
            out.append(previous)
            previous = entity
    out.append(previous)
    return out


def entities(text: str, logits: np.ndarray, offsets, word_ids, labels: Sequence[str], strategy: str = "none",
             ignore_labels: Sequence[str] = ("O",)) -> list[dict[str, Any]]:
    """The entities of one text.

    Args:
        text: The original text.
        logits: ``[tokens, labels]`` for the text's tokens (no ``<s>``/``</s>`` rows).
        offsets: ``(start, end)`` of each token in ``text``.
        word_ids: The word of each token.
        labels: Label of each class index.
        strategy: One of :data:`STRATEGIES`.
        ignore_labels: Labels (or groups) left out of the answer.
    """
    tokens = _tokens(softmax(logits), offsets, word_ids)
    if strategy in ("none", "simple"):
        found = [_labelled(t, labels, text) for t in tokens]
    else:
        found = _words(tokens, strategy, labels, text)
    if strategy != "none":
        found = group_entities(found, text)
    ignored = set(ignore_labels)
    return [e for e in found if e.get("entity") not in ignored and e.get("entity_group") not in ignored]
