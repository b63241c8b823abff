"""Step 5: prove the ONNX graph answers like the torch model, before anything is published.

Both sides get the same ids: a built-in multilingual probe set, tokenised by the runtime's
tokenizer, run as one right-padded batch with one to three masks per sentence. The torch side
is the unmodified ``XLMWithLMHeadModel`` (not the export wrapper), so the check covers the
attention rewrite, the in-graph head and any fusion or quantisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from xlm_onnx import format as fmt

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


@dataclass(frozen=True)
class Gate:
    """Acceptance thresholds of one precision against fp32 torch."""

    max_abs_score: float
    min_top1: float
    min_top5_overlap: float


#: The one place where accuracy thresholds live (random tiny weights are pessimistic for int8).
GATES = {
    "fp32": Gate(max_abs_score=1e-4, min_top1=0.95, min_top5_overlap=0.95),
    "fp16": Gate(max_abs_score=5e-3, min_top1=0.80, min_top5_overlap=0.80),
    "int8": Gate(max_abs_score=5e-2, min_top1=0.50, min_top5_overlap=0.50),
}


@dataclass(frozen=True)
class ValidationReport:
    """Figures of one validation run (stored in the manifest)."""

    n_sentences: int
    n_masks: int
    max_abs_score_delta: float
    top1_agreement: float
    top5_overlap: float
    gate: dict

    def failures(self) -> list[str]:
        """Human-readable list of missed thresholds (empty when the gate passes)."""
        gate = Gate(**self.gate)
        out = []
        if not self.max_abs_score_delta <= gate.max_abs_score:
            out.append(f"max |delta score| {self.max_abs_score_delta:.3g} > {gate.max_abs_score:g}")
        if self.top1_agreement < gate.min_top1:
            out.append(f"top-1 agreement {self.top1_agreement:.3f} < {gate.min_top1}")
        if self.top5_overlap < gate.min_top5_overlap:
            out.append(f"top-5 overlap {self.top5_overlap:.3f} < {gate.min_top5_overlap}")
        return out

    def as_dict(self) -> dict:
        return asdict(self)


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


def compare(ref_probs: np.ndarray, scores: np.ndarray, token_ids: np.ndarray, precision: str, n_sentences: int) -> ValidationReport:
    """Compares ONNX top-k (``scores``/``token_ids``, k >= 5) with torch probabilities."""
    ref_top5 = np.argsort(-ref_probs, axis=-1, kind="stable")[:, :5]
    delta = np.abs(np.take_along_axis(ref_probs, token_ids, axis=-1) - scores)
    overlap = [len(set(a) & set(b)) / 5 for a, b in zip(ref_top5.tolist(), token_ids[:, :5].tolist())]
    return ValidationReport(
        n_sentences=n_sentences,
        n_masks=int(ref_probs.shape[0]),
        max_abs_score_delta=float(delta.max()) if delta.size else 0.0,
        top1_agreement=float(np.mean(ref_top5[:, 0] == token_ids[:, 0])),
        top5_overlap=float(np.mean(overlap)),
        gate=asdict(GATES[precision]),
    )
