"""Masked-token accuracy per language of an export's precisions (fp32 / fp16 / int8).

For each language, up to ``--max-lines`` evaluation lines are encoded as ``<s> text </s>``; 15% of their non-special tokens (at least
one) are replaced by ``<special1>`` with a fixed seed, and every export predicts all masks of a
line at once (the graph's own top-k head, batched). Reports per language the top-1/top-5 accuracy
per precision and the top-1 agreement of fp16/int8 with fp32, as a markdown table and JSON::

    python benchmarks/accuracy.py fp32=DIR int8=xlm_onnx/default_model [fp16=DIR] --json out.json

Needs the corpus cache (``python -m recipes.demo_model.corpus``) and the export extra only for that.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from xlm_onnx import format as fmt
from xlm_onnx.batching import pad
from xlm_onnx.session import create_session
from xlm_onnx.tokenization import XLMTokenizer

N_SPECIAL = 14
COUNTS = ("lines", "n_masks")


def make_cases(rows: list[dict], tok: XLMTokenizer, max_positions: int, max_lines: int, seed: int,
               mask_prob: float = 0.15) -> dict[str, list[tuple[list[int], list[int], list[int]]]]:
    """lang -> [(masked ids, masked positions, true ids)], deterministic."""
    by_lang: dict[str, list[str]] = {}
    for r in rows:
        if r.get("split", "heldout") == "heldout":
            by_lang.setdefault(r["lang"], []).append(r["text"])
    cases = {}
    for lang in sorted(by_lang):
        rng = random.Random(f"{seed}-{lang}")
        texts = sorted(by_lang[lang])
        rng.shuffle(texts)
        out = []
        for text in texts[:max_lines]:
            ids = tok.encode(text)[: max_positions - 1]
            cand = [i for i, t in enumerate(ids) if t >= N_SPECIAL]
            if not cand:
                continue
            pos = sorted(rng.sample(cand, max(1, round(mask_prob * len(cand)))))
            masked = list(ids)
            for p in pos:
                masked[p] = tok.mask_token_id
            out.append((masked, pos, [ids[p] for p in pos]))
        if out:
            cases[lang] = out
    return cases


def predict(session, cases: list[tuple], pad_id: int, batch: int = 32, k: int = 5) -> np.ndarray:
    """[n_masks, k] predicted ids, masks in case order then position order."""
    preds = []
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        ids, attn = pad([c[0] for c in chunk], pad_id)
        feed = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: attn, fmt.TOP_K: np.array([k], np.int64),
                fmt.TARGET_IDS: np.zeros(0, np.int64)}
        if fmt.LABEL_IDS in {i.name for i in session.get_inputs()}:  # format 2
            feed[fmt.LABEL_IDS] = np.zeros(0, np.int64)
        _, token_ids, positions, _ = session.run(list(fmt.FILL_MASK_OUTPUTS), feed)
        expected = [(r, p) for r, c in enumerate(chunk) for p in c[1]]
        if [tuple(x) for x in positions.tolist()] != expected:
            raise RuntimeError("mask positions from the graph differ from the masks placed")
        preds.append(token_ids)
    return np.concatenate(preds)


def evaluate(models: dict[str, Path], rows: list[dict], max_lines: int = 60, seed: int = 0,
             threads: int = 2) -> dict:
    """{"languages": {lang: {n_masks, <prec>_top1, <prec>_top5, <prec>_agree}}, "all": {...}}."""
    first = next(iter(models.values()))
    tok = XLMTokenizer.from_pretrained(first)
    manifest = fmt.read_manifest(first)
    cases = make_cases(rows, tok, manifest.max_positions, max_lines, seed)
    per_prec: dict[str, dict[str, np.ndarray]] = {}
    for name, path in models.items():
        session = create_session(Path(path) / fmt.MODEL_FILE, "cpu", threads, "all")
        per_prec[name] = {lang: predict(session, c, manifest.pad_token_id) for lang, c in cases.items()}
    ref = "fp32" if "fp32" in models else next(iter(models))
    out: dict = {"models": {k: str(v) for k, v in models.items()}, "seed": seed, "max_lines": max_lines,
                 "languages": {}}
    tot: dict[str, float] = {}
    for lang, c in cases.items():
        truth = np.array([t for case in c for t in case[2]])
        row = {"lines": len(c), "n_masks": int(truth.size)}
        for name, pred in per_prec.items():
            p = pred[lang]
            row[f"{name}_top1"] = float(np.mean(p[:, 0] == truth))
            row[f"{name}_top5"] = float(np.mean((p == truth[:, None]).any(1)))
            if name != ref:
                row[f"{name}_agree"] = float(np.mean(p[:, 0] == per_prec[ref][lang][:, 0]))
        out["languages"][lang] = row
        for key, v in row.items():
            tot[key] = tot.get(key, 0.0) + (v if key in COUNTS else v * row["n_masks"])
    n = tot["n_masks"]
    out["all"] = {k: (int(v) if k in COUNTS else v / n) for k, v in tot.items()}
    out["macro"] = {k: float(np.mean([r[k] for r in out["languages"].values()])) for k in tot if k not in COUNTS}
    out["reference"] = ref
    from xlm_onnx.cpu import cpu_info  # int8 answers depend on the CPU class (xlm_onnx/cpu.py)

    out["cpu"] = cpu_info().as_dict()
    return out


def markdown(result: dict) -> str:
    names = list(result["models"])
    ref = result["reference"]
    head = ["lang", "masks"] + [f"{n} top-1 / top-5" for n in names] + [f"{n} agree" for n in names if n != ref]
    cpu = result.get("cpu", {})
    lines = [f"CPU: {cpu.get('model')} (class {cpu.get('isa_class')}; flags {' '.join(cpu.get('flags', []))})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt_row(label: str, r: dict) -> str:
        cells = [label, str(r.get("n_masks", ""))]
        cells += [f"{100 * r[f'{n}_top1']:.1f} / {100 * r[f'{n}_top5']:.1f}" for n in names]
        cells += [f"{100 * r[f'{n}_agree']:.1f}" for n in names if n != ref]
        return "| " + " | ".join(cells) + " |"

    lines.append(fmt_row("**all (micro)**", result["all"]))
    lines.append(fmt_row("**macro**", result["macro"]))
    lines += [fmt_row(lang, r) for lang, r in result["languages"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=DIR, e.g. fp32=/tmp/demo-fp32 int8=xlm_onnx/default_model")
    parser.add_argument("--corpus", type=Path, help="JSON lines with lang/text (default: the demo corpus' held-out split)")
    parser.add_argument("--max-lines", type=int, default=60, help="held-out lines per language")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.models)
    from recipes.demo_model.corpus import load_corpus  # a given path is only read; None builds/loads the demo corpus

    rows = load_corpus(args.corpus)
    result = evaluate({k: Path(v) for k, v in models.items()}, rows, args.max_lines, args.seed, args.threads)
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"all": result["all"], "macro": result["macro"], "cpu": result["cpu"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
