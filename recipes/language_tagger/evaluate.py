"""Held-out word accuracy of an exported language tagger, through the runtime (no torch).

Builds the same held-out mixes as training (UDHR sections ``% 5 == 0``, seed + 1), runs
``TokenClassifier`` and compares the label of each Moses word's first piece (what the model was
trained on) with the word's language; then tags one mixed sentence with ``first``::

    python -m recipes.language_tagger.evaluate .cache/tagger-int8
"""

from __future__ import annotations

import argparse
import json

from xlm_onnx.tasks.token_classification import TokenClassifier

from .train import LANGS, UDHR, mixes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    records = [json.loads(line) for line in UDHR.read_text(encoding="utf-8").splitlines() if line.strip()]
    held = {lang: [r["text"] for r in records if r["lang"] == lang and r["section"] % 5 == 0] for lang in LANGS}
    examples = mixes(held, 1000, args.seed + 1)
    tagger = TokenClassifier.from_pretrained(args.model_dir)
    # Per Moses word, the label of its first piece (``none`` keeps the token index): the metric of
    # train.py, here through the exported graph and the runtime's tokenizer.
    answers = tagger([text for text, _ in examples], aggregation_strategy="none", ignore_labels=[])
    right = total = 0
    for (text, runs), entities in zip(examples, answers):
        enc = tagger.model.tokenizer.encode_with_offsets(text)
        firsts = {e["index"]: e["entity"] for e in entities}
        for i, w in enumerate(enc.word_ids):
            if i == 0 or enc.word_ids[i - 1] != w:
                start = enc.words[w][0]
                gold = next(lang for s, end, lang in runs if s <= start < end + 1)
                right += firsts[i + 1] == gold
                total += 1
    print(json.dumps({"held_out_examples": len(examples), "words": total, "word_accuracy": round(right / total, 4)}))
    text = "Everyone has the right to life, Toute personne a droit à la liberté, Jeder hat das Recht auf Leben."
    for e in tagger(text, aggregation_strategy="first", ignore_labels=[]):
        print(f"{e['entity_group']:>3} {e['start']:>3}-{e['end']:<3} {e['score']:.3f}  {e['word']!r}")


if __name__ == "__main__":
    main()
