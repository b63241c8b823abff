"""Write ``MODEL_CARD.md`` of the embedded demo model from the training log, corpus and accuracy report.

    python -m recipes.demo_model.model_card --checkpoint .cache/demo_ckpt --accuracy .cache/accuracy.json \\
        --model-dir xlm_onnx/default_model
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xlm_onnx import format as fmt

from .corpus import SOURCES, load_corpus, stats

REPRODUCE = """\
```bash
apt-get update
python -m recipes.demo_model.corpus --download          # apt-get download firefox-esr-l10n-*, extract text
python -m recipes.demo_model.train --out .cache/demo_ckpt   # {planned} steps (recipes/demo_model/train_config.json)
xlm-onnx export .cache/demo_ckpt .cache/demo-fp32 --force
xlm-onnx export .cache/demo_ckpt .cache/demo-fp16 --precision fp16 --force
xlm-onnx export .cache/demo_ckpt .cache/demo-int8 --precision int8 --tied-embedding fp16 --force
python benchmarks/accuracy.py fp32=.cache/demo-fp32 fp16=.cache/demo-fp16 int8=.cache/demo-int8 --json .cache/accuracy.json
cp -r .cache/demo-int8/. xlm_onnx/default_model/
python -m recipes.demo_model.model_card --checkpoint .cache/demo_ckpt --accuracy .cache/accuracy.json --model-dir xlm_onnx/default_model
```

The run is defined by its step count; the same corpus, torch version and thread count reproduce the
weights bit for bit (compare `weights_sha256` in `train_log.json`: `{sha}`; with the previous corpus
a second run wrote a byte-identical `model.safetensors`). The corpus is the one part that can move:
Debian's security archive serves only the newest `firefox-esr-l10n-*` packages, so an ESR update
changes the Firefox strings (153.7.0esr -> 153.8.0esr: 392,072 -> 393,826 training lines) and with them the
weights. This model was trained on `.cache/corpus/corpus.jsonl` with SHA-256 `{corpus_sha}`; compare it
before expecting identical weights. Another CPU (other oneDNN kernels) rounds differently and lands
within noise of the figures above."""


def _accuracy_section(acc: dict | None) -> str:
    if acc is None:
        return "_Not measured yet._\n"
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from accuracy import markdown

    names = list(acc["models"])
    ref = acc["reference"]
    lines = [f"Held-out lines (never trained on): up to {acc['max_lines']} per language; 15% of each line's "
             f"non-special tokens (at least one) masked at once, seed {acc['seed']}; "
             f"{acc['all']['n_masks']} masks in {acc['all']['lines']} lines. Values in %.", ""]
    for n in names:
        lines.append(f"- **{n}**: top-1 {100 * acc['all'][f'{n}_top1']:.1f}%, top-5 {100 * acc['all'][f'{n}_top5']:.1f}% "
                     f"(macro over languages {100 * acc['macro'][f'{n}_top1']:.1f}% / "
                     f"{100 * acc['macro'][f'{n}_top5']:.1f}%)"
                     + ("" if n == ref else f"; top-1 agreement with {ref}: {100 * acc['all'][f'{n}_agree']:.2f}%"))
    return "\n".join(lines) + "\n\n" + markdown(acc) + "\n"


def _quality_note(acc: dict | None) -> str:
    if acc is None or acc["all"][f"{acc['reference']}_top1"] >= 0.15:
        return ""
    return ("\n- **Quality: weak.** The 2-core, 60-minute budget is the limit: the model mostly proposes\n"
            "  frequent tokens (punctuation, function words), so fill-mask answers are often not the right\n"
            "  word. More steps (`--max-steps`, on a faster machine) give a better model.")


def _budget_note(log: dict) -> str:
    """Says so plainly when the wall-clock guard, not the step count, ended the run."""
    if log.get("stopped_by") != "budget":
        return ""
    planned = log["config"].get("max_steps")
    return (f"\n\n**This run did not complete the recipe.** The wall-clock guard ({log['config']['minutes']:g} min) "
            f"stopped it at step {log['steps']} of {planned} on a machine shared with other jobs, so the "
            "learning rate had not decayed to zero and the weights depend on how fast the machine was: they "
            "are not reproducible bit for bit. Re-run the recipe on an idle machine (the guard is now "
            "240 min) to get the reproducible model.")


def _corpus_sha256() -> str:
    from xlm_onnx.format import sha256_file

    from .corpus import CACHE

    path = CACHE / "corpus.jsonl"
    return sha256_file(path) if path.is_file() else "not recorded"


def _table_note(manifest: dict) -> str:
    quant = manifest.get("quantization", {})
    if manifest["precision"] != "int8":
        return ""
    bits = (f"{quant['weight_bits']}-bit signed weights (|q| <= {quant['weight_max']}: the same answers on every "
            "CPU class, see the documentation's int8 guide)" if "weight_bits" in quant else "full-range int8 weights")
    if quant.get("activations", fmt.LEGACY_INT8_ACTIVATIONS) == fmt.INT8_PER_ROW:
        bits += "; per-row activation scales: a text's answers are the same alone or in any batch"
    table = quant.get("tied_embedding", "int8")
    if table == "int8":
        return f" ({bits})"
    return (f" ({bits}; the tied embedding / LM head table is stored {table} and the head computed in fp32, "
            "for top-1 agreement with fp32)")


def render(checkpoint: Path, model_dir: Path, accuracy: dict | None) -> str:
    log = json.loads((checkpoint / "train_log.json").read_text(encoding="utf-8"))
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    manifest = json.loads((model_dir / fmt.MANIFEST_FILE).read_text(encoding="utf-8"))
    cfg = log["config"]
    per = stats(load_corpus())
    tokens = log["train_tokens"]
    size = sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file() and f.name != "MODEL_CARD.md")
    data_rows = ["| lang | Firefox lines | UDHR lines | train lines | train BPE tokens | held-out lines |",
                 "|---|---|---|---|---|---|"]
    for lang in sorted(per):
        c = per[lang]
        data_rows.append(f"| {lang} | {c['firefox_lines']} | {c['udhr_lines']} | {c['train_lines']} | "
                         f"{tokens.get(lang, 0)} | {c['heldout_lines']} |")
    total_lines = sum(c["train_lines"] for c in per.values())
    first, last = log["history"][0], log["history"][-1]
    return f"""# xlm-onnx demo model

A **small demo model**, trained from scratch in this repository so that `xlm-onnx fill-mask` works
with nothing to download. It is *not* XLM-100 (`xlm-mlm-100-1280`) and nowhere near its quality:
{log['n_parameters'] / 1e6:.1f} M parameters, trained for {log['train_seconds'] / 60:.0f} minutes on 2 CPU
cores, mostly on browser UI strings. Use it to try the runtime; export a real checkpoint for real work.

## Files
Precision **{manifest['precision']}**{_table_note(manifest)}, {size / 1e6:.1f} MB on disk (`model.onnx` + `model.onnx.data` +
tokenizer files); `xlm_onnx.json` is the manifest the runtime checks. This card is not in the manifest.

## Architecture
`XLMWithLMHeadModel` (Hugging Face transformers layout), exported with this project's exporter:
{config['n_layers']} layers, hidden {config['emb_dim']}, {config['n_heads']} heads, GELU, post-LayerNorm,
learnt positions (max {config['max_position_embeddings']}), **no language embeddings** (`use_lang_emb=False`,
`n_langs=1`, like XLM-100: no `lang` argument needed), LM head tied to the input embedding.
Vocabulary: {log['vocab_size']} entries, XLM-format BPE (`</w>`, {cfg['num_merges']} merges learnt on the
training split, cased, accents kept), XLM special tokens and ids (`<s>` 0, `</s>` 1, `<pad>` 2,
`<unk>` 3, mask `<special1>` 5).

## Training
Masked-LM objective: {cfg['mask_prob']:.0%} of the non-special tokens, 80% `<special1>` / 10% random /
10% unchanged; each language's lines shuffled and packed as `<s> a </s> b </s> ...` rows of
{cfg['seq_len']} tokens, batch {cfg['batch_size']}; AdamW (lr {cfg['lr']}, betas 0.9/0.98, weight decay
{cfg['weight_decay']}), {cfg['warmup_steps']} warmup steps then linear decay to zero at step {log['config'].get('max_steps') or log['steps']};
{"bf16 autocast (fp32 master weights)" if cfg.get('bf16') else "fp32"}; dropout {cfg['dropout']}; seed {cfg['seed']};
torch {log['torch']} with {cfg['threads']} threads.

- **{log['steps']} steps** in {log['train_seconds'] / 60:.1f} min of training (+ {log['prep_seconds']:.0f} s data
  preparation/BPE) on 2 CPU cores: {log['steps'] * cfg['batch_size']} rows, {log['epochs']} full epochs over
  {sum(tokens.values())} training tokens.
- Training MLM loss {first['loss']} (step {first['step']}) -> **{log['final_loss']}** (last {cfg['log_every']} steps);
  accuracy on the training batches' selected tokens (the 10% kept unchanged included)
  {first['acc']:.3f} -> {last['acc']:.3f}.{_quality_note(accuracy)}{_budget_note(log)}

## Held-out accuracy
{_accuracy_section(accuracy)}
## Data
| source | licence / origin |
|---|---|
| UDHR | {SOURCES['udhr']} |
| Firefox | {SOURCES['firefox']} |

Firefox strings: the `.ftl` and `.properties` files of each langpack (developer tools excluded);
Fluent terms and message references resolved (`{{ -brand-short-name }}` -> Firefox), messages with
variables/placeholders, select expressions, URLs or mostly non-letters dropped, HTML tags stripped,
one- and two-word labels dropped (except in scripts without spaces), duplicates removed per language.
Firefox locale variants are merged into one language (es-AR/CL/ES/MX -> es, pt-BR/PT -> pt, en-CA/GB -> en,
nb-NO -> no; zh-TW is `zh_tw`). Split: {100 - 5}% train / 5% held out by a hash of (language, line).
{len(per)} languages, {total_lines} training lines; BPE tokens counted with the shipped tokenizer.

{chr(10).join(data_rows)}

## Licence
The weights and vocabulary in this directory are released under the **Mozilla Public Licence 2.0**,
the stronger of the two training-text licences (the Firefox strings are MPL-2.0; the UDHR package is
MIT, whose notice is kept above). MPL-2.0 is a file-level licence: it covers these model files only,
not the package code around them (Apache-2.0), and needs no change to code that loads them.
Source form of the model = this card's recipe plus the repository's `recipes/demo_model/` and `export/` code. The licence
text is `LICENSE-MPL-2.0` beside this card.

## Reproduce
{REPRODUCE.format(planned=log['config'].get('max_steps') or log['steps'], sha=log.get('weights_sha256', 'not recorded'), corpus_sha=_corpus_sha256())}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True, help="exported directory; the card goes there")
    parser.add_argument("--accuracy", type=Path, help="JSON from benchmarks/accuracy.py")
    args = parser.parse_args(argv)
    acc = json.loads(args.accuracy.read_text(encoding="utf-8")) if args.accuracy else None
    (args.model_dir / "MODEL_CARD.md").write_text(render(args.checkpoint, args.model_dir, acc), encoding="utf-8")


if __name__ == "__main__":
    main()
