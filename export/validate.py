"""Step 5: prove the ONNX graph answers like the torch model, before anything is published.

Both sides get the same ids: a built-in multilingual probe set, tokenised by the runtime's
tokenizer, run as one right-padded batch with one to three masks per sentence. The torch side
is the unmodified ``XLMWithLMHeadModel`` (not the export wrapper), so the check covers the
attention rewrite, the in-graph head and any fusion or quantisation.

The probes and the reference's answers become the directory's ``golden.json``, and the gate is
applied by the runtime's :func:`xlm_onnx.check.run_golden` — the same code ``xlm-onnx check``
runs on a deployment machine. Thresholds live in :data:`xlm_onnx.check.GATES`.
"""

from __future__ import annotations

import numpy as np

from xlm_onnx import format as fmt
from xlm_onnx.check import GATES, Gate  # noqa: F401  (re-exported: the gates' one home is the runtime)

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

    With ``uses_langs``, rows get language ids 0, 1, ... in turn (a ``langs`` input).
    """
    batch = tokenizer.encode_batch(list(texts), max_length=max_length, truncation=True)
    ids, attn = batch["input_ids"].copy(), batch["attention_mask"]
    for row in range(ids.shape[0]):
        length = int(attn[row].sum())
        inner = np.arange(1, length - 1)  # never the <s> / </s> specials
        n_masks = 1 + row % 3
        for pos in inner[(row * 7 + np.arange(n_masks) * 5) % len(inner)]:
            ids[row, pos] = mask_token_id
    batch = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: attn}
    if uses_langs:
        batch[fmt.LANGS] = np.repeat((np.arange(ids.shape[0]) % 2)[:, None], ids.shape[1], axis=1).astype(np.int64)
    return batch


def torch_reference(model, batch: dict[str, np.ndarray], mask_token_id: int) -> np.ndarray:
    """Softmax probabilities ``[n_masks, vocab]`` of the unmodified HF model at mask positions."""
    import torch

    with torch.no_grad():
        kwargs = {"attention_mask": torch.from_numpy(batch[fmt.ATTENTION_MASK])}
        if fmt.LANGS in batch:
            kwargs["langs"] = torch.from_numpy(batch[fmt.LANGS])
        logits = model(input_ids=torch.from_numpy(batch[fmt.INPUT_IDS]), **kwargs).logits
        rows, cols = np.nonzero(batch[fmt.INPUT_IDS] == mask_token_id)
        return torch.softmax(logits[rows, cols].float(), dim=-1).numpy()
