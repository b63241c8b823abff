"""Step 5: prove the ONNX graph answers like the torch model, before anything is published.

Both sides get the same ids: a built-in multilingual probe set, tokenised by the runtime's
tokenizer, run as one right-padded batch with one to three masks per sentence. The torch side
is the unmodified ``XLMWithLMHeadModel`` (not the export wrapper), so the check covers the
attention rewrite, the in-graph head and any fusion or quantisation.

The probes and the reference's answers become the directory's ``golden.json``, and the gate is
applied by the runtime's :func:`xlm_onnx.golden.run_golden` — the same code ``xlm-onnx check``
runs on a deployment machine. Thresholds live in :data:`xlm_onnx.golden.GATES`.

Every head is covered: fill-mask probabilities, the label log-probabilities (labels = each
masked position's original token, what pseudo-log-likelihood scoring asks) and the encoder's
output, mean-pooled over each probe's tokens (what embeddings return).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xlm_onnx import format as fmt
from xlm_onnx.golden import GATES, Gate  # noqa: F401  (re-exported: the gates' one home is the runtime)

#: Key of :func:`probe_batch`'s answer holding the original id at each mask (not a graph input).
LABELS = "labels"

#: Sentences in several scripts; masks are placed on token positions, so any vocabulary works.
PROBE_TEXTS = (
    "All human beings are born free and equal in dignity and rights.",
    "Tous les êtres humains naissent libres et égaux en dignité et en droits.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "Todos los seres humanos nacen libres e iguales en dignidad y derechos.",
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια.",
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता प्राप्त है।",
    "人人生而自由，在尊严和权利上一律平等。",
    "Kila mtu amezaliwa huru, hadhi na haki zake ni sawa.",
    "Wszyscy ludzie rodzą się wolni i równi pod względem swej godności.",
    "Tüm insanlar özgür, onur ve haklar bakımından eşit doğarlar.",
)


def probe_batch(tokenizer, mask_token_id: int, uses_langs: bool = False, texts=PROBE_TEXTS,
                max_length: int = 64) -> dict[str, np.ndarray]:
    """Right-padded probe batch with masks at deterministic positions (1-3 per sentence).

    With ``uses_langs``, rows get language ids 0, 1, ... in turn (a ``langs`` input). The answer
    also holds :data:`LABELS`: the original id at each mask, row-major (the graph's mask order).
    """
    from xlm_onnx.batching import pad

    rows = [tokenizer.encode(t) for t in texts]
    rows = [r if len(r) <= max_length else r[: max_length - 1] + r[-1:] for r in rows]  # keep </s>
    original, attn = pad(rows, tokenizer.pad_token_id)
    ids = original.copy()
    for row in range(ids.shape[0]):
        length = int(attn[row].sum())
        inner = np.arange(1, length - 1)  # never the <s> / </s> specials
        n_masks = 1 + row % 3
        for pos in inner[(row * 7 + np.arange(n_masks) * 5) % len(inner)]:
            ids[row, pos] = mask_token_id
    batch = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: attn, LABELS: original[ids == mask_token_id]}
    if uses_langs:
        batch[fmt.LANGS] = np.repeat((np.arange(ids.shape[0]) % 2)[:, None], ids.shape[1], axis=1).astype(np.int64)
    return batch


@dataclass(frozen=True)
class TorchReference:
    """Answers of the unmodified HF model on the probe batch.

    Attributes:
        probs: Softmax probabilities ``[n_masks, vocab]`` at the masks, row-major.
        label_log_probs: ``log p(original token)`` at each mask ``[n_masks]``.
        embeddings: Last hidden state mean-pooled over each row's tokens ``[batch, dim]``.
    """

    probs: np.ndarray
    label_log_probs: np.ndarray
    embeddings: np.ndarray


def torch_reference(model, batch: dict[str, np.ndarray], mask_token_id: int) -> TorchReference:
    """Runs ``model`` (an ``XLMWithLMHeadModel``) on ``batch`` (from :func:`probe_batch`)."""
    import torch

    with torch.no_grad():
        mask = torch.from_numpy(batch[fmt.ATTENTION_MASK])
        kwargs = {"attention_mask": mask, "output_hidden_states": True}
        if fmt.LANGS in batch:
            kwargs["langs"] = torch.from_numpy(batch[fmt.LANGS])
        out = model(input_ids=torch.from_numpy(batch[fmt.INPUT_IDS]), **kwargs)
        rows, cols = np.nonzero(batch[fmt.INPUT_IDS] == mask_token_id)
        logits = out.logits[rows, cols].float()
        labels = torch.from_numpy(batch[LABELS]).unsqueeze(1)
        weights = mask.unsqueeze(-1).float()
        pooled = (out.hidden_states[-1].float() * weights).sum(1) / weights.sum(1)
        return TorchReference(probs=torch.softmax(logits, dim=-1).numpy(),
                              label_log_probs=torch.log_softmax(logits, dim=-1).gather(1, labels)[:, 0].numpy(),
                              embeddings=pooled.numpy())
