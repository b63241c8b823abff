"""Held-out accuracy of the language identifier beside lingua and py3langid, on the same lines.

Lines: every held-out UDHR paragraph (sections :data:`~recipes.langid.data.HELD_OUT_SECTIONS`, never
read in training) and every sentence of them (:func:`~recipes.langid.data.sentences`). Each system
answers with its full language set, as a user runs it (lingua: all its 75 languages, low-accuracy
mode off; py3langid: all its classes); an answer counts when it is the line's language (ISO 639-1 codes
compared with XLM's: ``nb`` is ``no``). The comparison that matters is over the languages all three
cover; ours is also reported over all 91, and over those neither peer has.

    pip install lingua-language-detector py3langid          # the benchmark only, not the runtime
    python -m recipes.langid.evaluate --fp32 .cache/langid-fp32 --int8 .cache/langid-int8 \\
        --json recipes/langid/results.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from .data import sentences, split, udhr_rows

#: Peer codes that are another spelling of an XLM code.
ALIASES = {"nb": "no"}


def held_out_lines() -> dict[str, list[tuple[str, str]]]:
    """``{"paragraph": [(lang, text)], "sentence": [(lang, text)]}`` of the held-out sections."""
    _, held = split(udhr_rows())
    return {"paragraph": [(r["lang"], r["text"]) for r in held],
            "sentence": [(r["lang"], s) for r in held for s in sentences(r["text"])]}


def ours(model_dir: str):
    from xlm_onnx import Model, TextClassifier

    classifier = TextClassifier(Model.load(model_dir))
    return lambda texts: [a["label"] for a in classifier(texts, truncation=True)], set(classifier.model.manifest.labels)


def lingua():
    from lingua import Language, LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def code(language) -> str | None:
        if language is None:
            return None
        iso = language.iso_code_639_1.name.lower()
        return ALIASES.get(iso, iso)

    return (lambda texts: [code(detector.detect_language_of(t)) for t in texts],
            {ALIASES.get(c, c) for c in (lang.iso_code_639_1.name.lower() for lang in Language.all())})


def py3langid():
    from py3langid import langid

    langid.classify("")  # loads its model (langid.IDENTIFIER)

    def code(text: str) -> str:
        found = langid.classify(text)[0]
        return ALIASES.get(found, found)

    return (lambda texts: [code(t) for t in texts], {ALIASES.get(c, c) for c in langid.IDENTIFIER.nb_classes})


def accuracy(gold: list[str], answers: list[str | None], keep) -> dict:
    """Overall and per-language accuracy over the lines whose language ``keep`` accepts."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lang, answer in zip(gold, answers):
        if keep(lang):
            per[lang][0] += answer == lang
            per[lang][1] += 1
    right, total = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    return {"accuracy": right / total if total else None, "lines": total,
            "per_language": {lang: round(v[0] / v[1], 4) for lang, v in sorted(per.items())}}


def evaluate(fp32: str, int8: str) -> dict:
    lines = held_out_lines()
    systems = {"xlm-onnx int8": ours(int8), "xlm-onnx fp32": ours(fp32), "lingua": lingua(), "py3langid": py3langid()}
    covered = {name: langs for name, (_, langs) in systems.items()}
    labels = covered["xlm-onnx int8"]
    shared = labels & covered["lingua"] & covered["py3langid"]
    only_ours = labels - covered["lingua"] - covered["py3langid"]
    report = {"languages": {"ours": sorted(labels), "all_three": sorted(shared), "only_ours": sorted(only_ours)},
              "lines": {kind: len(v) for kind, v in lines.items()}, "results": {}}
    for kind, rows in lines.items():
        gold, texts = [lang for lang, _ in rows], [text for _, text in rows]
        answers, seconds = {}, {}
        for name, (predict, _) in systems.items():
            start = time.perf_counter()
            answers[name] = predict(texts)
            seconds[name] = round(time.perf_counter() - start, 2)
        report["results"][kind] = {
            name: {"all_three": accuracy(gold, answers[name], shared.__contains__),
                   "own_languages": accuracy(gold, answers[name], covered[name].__contains__),
                   "only_ours": accuracy(gold, answers[name], only_ours.__contains__), "seconds": seconds[name]}
            for name in systems}
        agree = sum(a == b for a, b in zip(answers["xlm-onnx int8"], answers["xlm-onnx fp32"]))
        report["results"][kind]["int8_fp32_agreement"] = agree / len(texts)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Held-out accuracy beside lingua and py3langid (module docstring).")
    parser.add_argument("--fp32", required=True, help="fp32 export of the checkpoint")
    parser.add_argument("--int8", required=True, help="int8 export (the one shipped)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the report")
    args = parser.parse_args(argv)
    report = evaluate(args.fp32, args.int8)
    args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for kind, results in report["results"].items():
        for name, r in results.items():
            if isinstance(r, dict):
                print(f"{kind:9} {name:14} all three {r['all_three']['accuracy']:.4f}  own languages "
                      f"{r['own_languages']['accuracy']:.4f}  ({r['seconds']} s)")
        print(f"{kind:9} int8 vs fp32 label agreement {results['int8_fp32_agreement']:.4f}")


if __name__ == "__main__":
    main()
