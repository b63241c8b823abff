"""Train the embedded demo model: a small multilingual XLM with its own XLM-format BPE vocabulary.

Recipe (config: ``recipes/demo_model/train_config.json``): learn BPE on the train split of
:mod:`.corpus`, pack each language's shuffled lines into ``<s> a </s> b </s> ...`` sequences of
``seq_len`` tokens, train an ``XLMWithLMHeadModel`` without language embeddings (like XLM-100)
with the MLM objective (``mask_prob`` of the non-special tokens; 80% ``<special1>`` / 10% random /
10% kept) under bf16 autocast (1.7x the fp32 step rate on this 2-core CPU; master weights and the
optimizer stay fp32), AdamW with linear warmup then linear decay to 0 at ``max_steps``.

The run is defined by its step count, not by time, so it is reproducible: the same config, seed,
torch version and thread count give the same weights (``weights_sha256`` in the log; a test trains
twice and compares). ``minutes`` is only a guard: a slower machine that hits it stops early, logs
``stopped_by: "budget"`` and will not reproduce the shipped figures. ``max_steps = 0`` switches to
the old behaviour (lr decays over the wall-clock budget). Saves a Hugging Face checkpoint
(``save_pretrained`` + tokenizer files) and ``train_log.json``::

    python -m recipes.demo_model.train --out .cache/demo_ckpt
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import random
import time
from pathlib import Path

import torch

from xlm_onnx import format as fmt
from xlm_onnx_export.fixtures.bpe_vocab import write_xlm_vocab

CONFIG_FILE = Path(__file__).resolve().parent / "train_config.json"
BOS, EOS, PAD, UNK, MASK = fmt.BOS_ID, fmt.EOS_ID, fmt.PAD_ID, fmt.UNK_ID, fmt.MASK_ID
N_SPECIAL = len(fmt.SPECIAL_TOKENS)


@dataclasses.dataclass
class TrainConfig:
    num_merges: int = 12000
    min_frequency: int = 2
    n_layers: int = 4
    dim: int = 256
    n_heads: int = 4
    max_positions: int = 256
    dropout: float = 0.0
    seq_len: int = 128
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    seed: int = 0
    threads: int = 2
    bf16: bool = True  # torch.autocast("cpu", bfloat16) for forward/backward
    minutes: float = 60.0  # guard only when max_steps > 0
    max_steps: int = 0  # 0: the wall-clock budget defines the schedule (not reproducible)
    log_every: int = 25

    @classmethod
    def load(cls, path=CONFIG_FILE, **overrides) -> "TrainConfig":
        data = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)


def build_model(cfg: TrainConfig, vocab_size: int):
    from transformers import XLMConfig, XLMWithLMHeadModel

    config = XLMConfig(
        vocab_size=vocab_size, emb_dim=cfg.dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_positions, dropout=cfg.dropout, attention_dropout=cfg.dropout,
        use_lang_emb=False, n_langs=1, lang2id={"en": 0}, id2lang={0: "en"}, gelu_activation=True,
        sinusoidal_embeddings=False, causal=False, asm=False, bos_index=BOS, eos_index=EOS, pad_index=PAD,
        unk_index=UNK, mask_index=MASK, lang_id=0, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS,
    )
    torch.manual_seed(cfg.seed)
    return XLMWithLMHeadModel(config)


def pack(lines: list[list[int]], seq_len: int, rng: random.Random) -> list[list[int]]:
    """Shuffled lines of one language -> ``<s> l1 </s> l2 </s> ...`` rows of at most ``seq_len`` ids.

    Lines longer than a row are cut into row-sized chunks, each its own row.
    """
    order = list(range(len(lines)))
    rng.shuffle(order)
    rows, cur = [], [BOS]
    for i in order:
        ids = lines[i]
        for start in range(0, max(len(ids), 1), seq_len - 2):
            piece = ids[start:start + seq_len - 2] + [EOS]
            if len(cur) + len(piece) > seq_len:
                rows.append(cur)
                cur = [BOS]
            cur.extend(piece)
    if len(cur) > 1:
        rows.append(cur)
    return rows


def epoch_batches(by_lang: dict[str, list[list[int]]], cfg: TrainConfig, epoch: int):
    """Packed, padded ``(input_ids, attention_mask)`` batches of one epoch, in seeded order."""
    rng = random.Random(f"{cfg.seed}-{epoch}")
    rows = [row for lang in sorted(by_lang) for row in pack(by_lang[lang], cfg.seq_len, rng)]
    rng.shuffle(rows)
    for start in range(0, len(rows) - cfg.batch_size + 1, cfg.batch_size):
        chunk = rows[start:start + cfg.batch_size]
        width = max(map(len, chunk))
        ids = torch.full((len(chunk), width), PAD, dtype=torch.long)
        for r, row in enumerate(chunk):
            ids[r, : len(row)] = torch.tensor(row)
        yield ids, (ids != PAD).long()


def mask_tokens(ids: torch.Tensor, vocab_size: int, prob: float, gen: torch.Generator):
    """BERT/XLM masking: returns (inputs, labels); labels are -100 where nothing is predicted."""
    candidates = ids >= N_SPECIAL  # never specials, never padding
    chosen = (torch.rand(ids.shape, generator=gen) < prob) & candidates
    if not chosen.any() and candidates.any():  # tiny batches: always predict something
        chosen.view(-1)[candidates.view(-1).nonzero()[0]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = MASK
    rand_pos = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[rand_pos] = torch.randint(N_SPECIAL, vocab_size, ids.shape, generator=gen)[rand_pos]
    return inputs, labels


def mlm_loss(model, inputs, attention_mask, labels):
    """Cross-entropy over the masked positions only (the LM head never sees the other rows)."""
    hidden = model.transformer(input_ids=inputs, attention_mask=attention_mask)[0]
    sel = labels != -100
    logits = model.pred_layer.proj(hidden[sel])
    target = labels[sel]
    loss = torch.nn.functional.cross_entropy(logits, target)
    correct = (logits.argmax(-1) == target).sum().item()
    return loss, correct, int(target.numel())


def tokenize_corpus(rows: list[dict], ckpt: Path) -> dict[str, list[list[int]]]:
    from xlm_onnx import XLMTokenizer

    tok = XLMTokenizer.from_pretrained(ckpt)
    by_lang: dict[str, list[list[int]]] = {}
    for r in rows:
        ids = tok.encode(r["text"], add_special_tokens=False)
        if ids:
            by_lang.setdefault(r["lang"], []).append(ids)
    return by_lang


def weights_sha256(model) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes, bytes): equal hashes = equal weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def train(cfg: TrainConfig, out: Path, rows: list[dict] | None = None, log=print) -> dict:
    """Runs the recipe into ``out``; returns the training log (also written as train_log.json)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    if rows is None:
        from .corpus import load_corpus

        rows = load_corpus()
    train_rows = [r for r in rows if r.get("split", "train") == "train"]
    out = Path(out)
    write_xlm_vocab((r["text"] for r in train_rows), out, cfg.num_merges, min_frequency=cfg.min_frequency,
                    model_max_length=cfg.max_positions)
    vocab_size = len(json.loads((out / fmt.VOCAB_FILE).read_text(encoding="utf-8")))
    by_lang = tokenize_corpus(train_rows, out)
    n_tokens = {lang: sum(map(len, lines)) for lang, lines in sorted(by_lang.items())}
    prep_s = time.perf_counter() - t0
    log(f"vocab {vocab_size}, {sum(n_tokens.values())} train tokens in {len(n_tokens)} languages, prep {prep_s:.0f}s")

    model = build_model(cfg, vocab_size)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = torch.Generator().manual_seed(cfg.seed)
    budget = cfg.minutes * 60.0
    start = time.perf_counter()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if cfg.bf16 else contextlib.nullcontext
    step, epoch, history, win = 0, 0, [], [0.0, 0, 0, 0, time.perf_counter()]
    stopped_by = None
    while stopped_by is None:
        for ids, attn in epoch_batches(by_lang, cfg, epoch):
            elapsed = time.perf_counter() - start
            if cfg.max_steps and step >= cfg.max_steps:
                stopped_by = "max_steps"
            elif elapsed >= budget:
                stopped_by = "budget"
            if stopped_by:
                break
            progress = step / cfg.max_steps if cfg.max_steps else elapsed / budget
            scale = min((step + 1) / cfg.warmup_steps, 1.0) * min(1.0, (1.0 - progress) / 0.9)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * scale
            inputs, labels = mask_tokens(ids, vocab_size, cfg.mask_prob, gen)
            with autocast():
                loss, correct, n = mlm_loss(model, inputs, attn, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            win[0] += loss.item() * n
            win[1] += correct
            win[2] += n
            win[3] += int(attn.sum())
            if step % cfg.log_every == 0:
                entry = {"step": step, "epoch": epoch, "seconds": round(time.perf_counter() - start, 1),
                         "loss": round(win[0] / max(win[2], 1), 4), "acc": round(win[1] / max(win[2], 1), 4),
                         "lr": round(cfg.lr * scale, 7),
                         "tokens_per_s": round(win[3] / max(time.perf_counter() - win[4], 1e-9))}
                history.append(entry)
                log(json.dumps(entry))
                win = [0.0, 0, 0, 0, time.perf_counter()]
        else:
            epoch += 1
    train_s = time.perf_counter() - start
    model.eval()
    model.save_pretrained(out)
    if stopped_by == "budget" and cfg.max_steps:
        log(f"WARNING: the {cfg.minutes:g} min budget stopped training at step {step} of {cfg.max_steps}; "
            "the lr schedule did not finish and the result will not match the shipped model")
    result = {"config": dataclasses.asdict(cfg), "vocab_size": vocab_size, "steps": step, "epochs": epoch,
              "stopped_by": stopped_by, "weights_sha256": weights_sha256(model),
              "train_seconds": round(train_s, 1), "prep_seconds": round(prep_s, 1),
              "n_parameters": sum(p.numel() for p in model.parameters()),
              "final_loss": history[-1]["loss"] if history else None, "train_tokens": n_tokens,
              "torch": torch.__version__, "history": history}
    (out / "train_log.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log(f"done: {step} steps, {epoch} full epochs, {train_s / 60:.1f} min, final loss {result['final_loss']}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the embedded demo XLM (see module docstring).")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    parser.add_argument("--minutes", type=float, help="wall-clock training budget (default: the config's)")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (0: budget only)")
    parser.add_argument("--config", type=Path, default=CONFIG_FILE, help="JSON config (default: %(default)s)")
    args = parser.parse_args(argv)
    cfg = TrainConfig.load(args.config, minutes=args.minutes, max_steps=args.max_steps)
    train(cfg, args.out)


if __name__ == "__main__":
    main()
