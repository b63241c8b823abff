"""Train a word-level language tagger: ``XLMForTokenClassification`` on code-switched UDHR text.

Data: the UDHR dev lines (``../shared/data/udhr_xlm_dev.jsonl``) of :data:`LANGS`. Sections
``section % 5 == 0`` are held out. A training example is 2-4 runs of 3-12 consecutive words, each
run from a random line of a different language, joined by spaces; every Moses word gets its run's
language (the label of a word's first piece; later pieces are ignored, as transformers' token
classification examples do). Tokenization is the runtime's own (``encode_with_offsets``), so the
words the model is trained on are the words the ``first``/``average``/``max`` strategies read.

Model: a small XLM (2 layers, 128 wide, 4 heads) from scratch on the demo model's BPE vocabulary,
AdamW, a fixed number of steps on one CPU thread (reproducible for one torch version). Saves a
Hugging Face checkpoint and ``train_log.json`` with word accuracy on held-out mixes::

    python -m recipes.language_tagger.train --out .cache/tagger_ckpt
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import torch

from xlm_onnx import format as fmt
from xlm_onnx.model import default_model_dir
from xlm_onnx.tokenization import XLMTokenizer

LANGS = ("en", "fr", "de", "es", "it", "pl", "tr", "ru", "el", "ar")
UDHR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "udhr_xlm_dev.jsonl"
IGNORE = -100


def mixes(lines: dict[str, list[str]], n: int, seed: int) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """``n`` code-switched texts, each with its runs ``(start, end, lang)`` in characters."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        langs = rng.sample(LANGS, rng.randint(2, 4))
        parts, runs, pos = [], [], 0
        for lang in langs:
            words = rng.choice(lines[lang]).split()
            k = rng.randint(3, 12)
            i = rng.randint(0, max(0, len(words) - k))
            run = " ".join(words[i : i + k])
            runs.append((pos, pos + len(run), lang))
            parts.append(run)
            pos += len(run) + 1
        out.append((" ".join(parts), runs))
    return out


def word_labels(tok: XLMTokenizer, text: str, runs) -> tuple[list[int], list[int], list[str]]:
    """Ids with specials, a label per position (first piece of each word), and each word's language."""
    enc = tok.encode_with_offsets(text)
    word_lang = [next(lang for s, e, lang in runs if s <= start < e + 1) for start, _ in enc.words]
    labels = [IGNORE] + [LANGS.index(word_lang[w]) if i == 0 or enc.word_ids[i - 1] != w else IGNORE
                         for i, w in enumerate(enc.word_ids)] + [IGNORE]
    return tok.build_inputs_with_special_tokens(list(enc.ids)), labels, word_lang


def batches(tok, examples, size: int):
    rows = [word_labels(tok, text, runs)[:2] for text, runs in examples]
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), fmt.PAD_ID)
        labels = torch.full((len(chunk), width), IGNORE)
        for r, (row, lab) in enumerate(chunk):
            ids[r, : len(row)] = torch.tensor(row)
            labels[r, : len(lab)] = torch.tensor(lab)
        yield ids, (ids != fmt.PAD_ID).long(), labels


def accuracy(model, tok, examples) -> float:
    right = total = 0
    model.eval()
    with torch.no_grad():
        for ids, mask, labels in batches(tok, examples, 64):
            pred = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
            keep = labels != IGNORE
            right += int((pred[keep] == labels[keep]).sum())
            total += int(keep.sum())
    model.train()
    return right / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from transformers import XLMConfig, XLMForTokenClassification

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    records = [json.loads(line) for line in UDHR.read_text(encoding="utf-8").splitlines() if line.strip()]
    split = {True: {lang: [] for lang in LANGS}, False: {lang: [] for lang in LANGS}}
    for r in records:
        if r["lang"] in LANGS:
            split[r["section"] % 5 == 0][r["lang"]].append(r["text"])
    tok = XLMTokenizer.from_pretrained(default_model_dir())
    train, held = mixes(split[False], args.steps * 16, args.seed), mixes(split[True], 1000, args.seed + 1)
    config = XLMConfig(vocab_size=len(tok.encoder), emb_dim=128, n_layers=2, n_heads=4, max_position_embeddings=256,
                       dropout=0.1, attention_dropout=0.1, use_lang_emb=False, bos_index=fmt.BOS_ID,
                       eos_index=fmt.EOS_ID, pad_index=fmt.PAD_ID, unk_index=fmt.UNK_ID, mask_index=fmt.MASK_ID,
                       id2label=dict(enumerate(LANGS)), label2id={v: i for i, v in enumerate(LANGS)},
                       architectures=["XLMForTokenClassification"])
    model = XLMForTokenClassification(config).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / 200) * max(0.0, 1 - s / args.steps))
    began, log = time.time(), []
    for step, (ids, mask, labels) in enumerate(batches(tok, train, 16)):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step(), sched.step(), optim.zero_grad()
        if (step + 1) % 100 == 0:
            log.append({"step": step + 1, "loss": round(loss.item(), 4), "seconds": round(time.time() - began)})
            print(log[-1], flush=True)
    result = {"langs": LANGS, "steps": args.steps, "train_examples": len(train), "held_out_examples": len(held),
              "held_out_word_accuracy": round(accuracy(model, tok, held), 4), "seconds": round(time.time() - began),
              "torch": torch.__version__, "log": log}
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(default_model_dir() / name, args.out / name)
    (args.out / "train_log.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "log"}), flush=True)


if __name__ == "__main__":
    main()
