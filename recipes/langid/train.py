"""Train the embedded language identifier: an ``XLMForSequenceClassification`` over 91 languages.

Recipe (config: ``recipes/langid/train_config.json``): the demo model's tokenizer (its BPE
vocabulary covers the 115 languages it learnt, every script here), a fresh small XLM (no language
embeddings) whose sequence summary (first token, projection to the labels) classifies, trained
with cross-entropy on :class:`~recipes.langid.data.Sampler` batches (short windows, and one batch
in four of long joined lines) under bf16 autocast, AdamW with warmup then linear decay to 0 at
``max_steps``, one thread (``threads``), so the run is bounded and reproducible for a given torch
and thread count (``weights_sha256`` in the log). Held-out UDHR sections are never read here.

    python -m recipes.langid.train --out .cache/langid_ckpt      # ~15 min on one core
    xlm-onnx export .cache/langid_ckpt .cache/langid-int8 --precision int8
    python -m recipes.langid.evaluate .cache/langid_ckpt .cache/langid-int8
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import time
from pathlib import Path

import torch

from xlm_onnx import format as fmt
from xlm_onnx.model import default_model_dir

from .data import Sampler, firefox_lines, split, udhr_rows

CONFIG_FILE = Path(__file__).resolve().parent / "train_config.json"


@dataclasses.dataclass
class TrainConfig:
    n_layers: int = 2
    dim: int = 128
    n_heads: int = 4
    max_positions: int = 256
    dropout: float = 0.1
    batch_size: int = 64
    long_every: int = 4  # every 4th batch: long_batch_size samples of 48-254 ids
    long_batch_size: int = 16
    max_other_lines: int = 4000  # Firefox strings kept per language (evenly spaced)
    lr: float = 2e-3
    warmup_steps: int = 60
    weight_decay: float = 0.01
    max_steps: int = 3000
    minutes: float = 21.0  # a guard: a slower machine stops early and logs stopped_by "budget"
    seed: int = 0
    threads: int = 1
    bf16: bool = True
    log_every: int = 100

    @classmethod
    def load(cls, path=CONFIG_FILE, **overrides) -> "TrainConfig":
        data = json.loads(Path(path).read_text(encoding="utf-8")) if path and Path(path).is_file() else {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


def build_model(cfg: TrainConfig, vocab_size: int, labels: list[str]):
    from transformers import XLMConfig, XLMForSequenceClassification

    config = XLMConfig(
        vocab_size=vocab_size, emb_dim=cfg.dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_positions, dropout=cfg.dropout, attention_dropout=cfg.dropout,
        use_lang_emb=False, n_langs=1, lang2id={"en": 0}, id2lang={0: "en"}, gelu_activation=True,
        sinusoidal_embeddings=False, causal=False, asm=False, bos_index=fmt.BOS_ID, eos_index=fmt.EOS_ID,
        pad_index=fmt.PAD_ID, unk_index=fmt.UNK_ID, mask_index=fmt.MASK_ID, lang_id=0, pad_token_id=fmt.PAD_ID,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)},
        problem_type="single_label_classification", summary_type="first", summary_use_proj=True,
        summary_proj_to_labels=True, summary_activation=None, summary_first_dropout=cfg.dropout,
        architectures=["XLMForSequenceClassification"],
    )
    torch.manual_seed(cfg.seed)
    return XLMForSequenceClassification(config)


def tokenized(out: Path, max_other: int) -> dict[str, tuple[list[list[int]], list[list[int]]]]:
    """Language -> (UDHR train paragraphs, Firefox strings) as ids, with the demo tokenizer."""
    from xlm_onnx import XLMTokenizer

    tok = XLMTokenizer.from_pretrained(out)
    train, _ = split(udhr_rows())
    labels = {r["lang"] for r in train}
    other = firefox_lines(labels)
    lines = {}
    for lang in sorted(labels):
        udhr = [tok.encode(r["text"], add_special_tokens=False) for r in train if r["lang"] == lang]
        texts = other.get(lang, [])
        texts = texts[:: max(1, -(-len(texts) // max_other))]
        ff = [tok.encode(t, add_special_tokens=False) for t in texts]
        lines[lang] = ([ids for ids in udhr if ids], [ids for ids in ff if ids])
    return lines


def batch(sampler: Sampler, size: int, long: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows, labels = zip(*(sampler.sample(long) for _ in range(size)))
    width = max(map(len, rows)) + 2
    ids = torch.full((size, width), fmt.PAD_ID, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row) + 2] = torch.tensor([fmt.BOS_ID, *row, fmt.EOS_ID])
    return ids, (ids != fmt.PAD_ID).long(), torch.tensor(labels)


def train(cfg: TrainConfig, out: Path, log=print) -> dict:
    """Runs the recipe into ``out`` (a Hugging Face checkpoint + train_log.json); returns the log."""
    from recipes.demo_model.train import weights_sha256

    torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in fmt.TOKENIZER_FILES:  # the demo model's tokenizer, as it ships
        shutil.copyfile(default_model_dir() / name, out / name)
    t0 = time.perf_counter()
    lines = tokenized(out, cfg.max_other_lines)
    sampler = Sampler(lines, seed=cfg.seed)
    vocab_size = len(json.loads((out / fmt.VOCAB_FILE).read_text(encoding="utf-8")))
    log(f"{len(lines)} languages, {sum(len(u) + len(o) for u, o in lines.values())} lines, "
        f"prep {time.perf_counter() - t0:.0f}s")
    model = build_model(cfg, vocab_size, sampler.labels).train()
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embeddings" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if cfg.bf16 else contextlib.nullcontext
    start, history, win, stopped_by, step = time.perf_counter(), [], [0.0, 0, 0], "max_steps", 0
    while step < cfg.max_steps:
        if time.perf_counter() - start > cfg.minutes * 60:
            stopped_by = "budget"
            break
        scale = min((step + 1) / cfg.warmup_steps, 1.0) * min(1.0, (1.0 - step / cfg.max_steps) / 0.9)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * scale
        long = step % cfg.long_every == cfg.long_every - 1
        ids, mask, labels = batch(sampler, cfg.long_batch_size if long else cfg.batch_size, long)
        with autocast():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        win[0] += loss.item()
        win[1] += int((logits.argmax(-1) == labels).sum())
        win[2] += len(labels)
        if step % cfg.log_every == 0:
            entry = {"step": step, "seconds": round(time.perf_counter() - start, 1),
                     "loss": round(win[0] / cfg.log_every, 4), "acc": round(win[1] / win[2], 4)}
            history.append(entry)
            log(json.dumps(entry))
            win = [0.0, 0, 0]
    model.eval()
    model.save_pretrained(out)
    result = {"config": dataclasses.asdict(cfg), "labels": sampler.labels, "steps": step, "stopped_by": stopped_by,
              "train_seconds": round(time.perf_counter() - start, 1), "weights_sha256": weights_sha256(model),
              "n_parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
              "lines": {lang: [len(u), len(o)] for lang, (u, o) in lines.items()}, "history": history}
    (out / "train_log.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"done: {step} steps ({stopped_by}), {result['train_seconds'] / 60:.1f} min")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the embedded language identifier (see module docstring).")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    parser.add_argument("--max-steps", type=int, help="steps (default: the config's)")
    parser.add_argument("--minutes", type=float, help="wall-clock guard (default: the config's)")
    args = parser.parse_args(argv)
    train(TrainConfig.load(max_steps=args.max_steps, minutes=args.minutes), args.out)


if __name__ == "__main__":
    main()
