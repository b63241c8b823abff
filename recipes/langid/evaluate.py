"""Held-out accuracy of the language identifier beside lingua and py3langid, on the same lines.

Lines: every held-out UDHR paragraph (sections :data:`~recipes.langid.data.HELD_OUT_SECTIONS`, never
read in training), every sentence of them (:func:`~recipes.langid.data.sentences`; most paragraphs
are one sentence), and up to :data:`UI_PER_LANGUAGE` Firefox UI strings per language from the demo
corpus' held-out split (short single sentences of another kind of text). Each system
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

from .data import firefox_lines, sentences, split, udhr_rows

#: Peer codes that are another spelling of an XLM code.
ALIASES = {"nb": "no"}
#: Held-out Firefox strings per language (evenly spaced), at least 12 characters each.
UI_PER_LANGUAGE = 30
#: UDHR lines left out of the comparison with the peers (still in "own languages"): the data files
#: them under these codes, but their texts are other varieties, which the peers rightly name
#: otherwise (``fr``: "Tchèki é drau è lè rknachans, var k’fu sau, d’sè pèrsonalitè juridik.";
#: ``sw``: "Kila muuntru naawo xaqi kiwoowa mahale uko Shaqsi ahaaniye"). Our model learnt them as
#: filed, so counting them would favour it.
NOT_THE_LANGUAGE = frozenset({"fr", "sw"})


def held_out_lines() -> dict[str, list[tuple[str, str]]]:
    """``{"paragraph" | "sentence" | "ui string": [(lang, text)]}``: the lines of each held-out set."""
    _, held = split(udhr_rows())
    ui = firefox_lines({r["lang"] for r in held}, "heldout")
    ui = {lang: [t for t in texts if len(t) >= 12] for lang, texts in ui.items()}
    return {"paragraph": [(r["lang"], r["text"]) for r in held],
            "sentence": [(r["lang"], s) for r in held for s in sentences(r["text"])],
            "ui string": [(lang, t) for lang, texts in sorted(ui.items())
                          for t in texts[:: max(1, -(-len(texts) // UI_PER_LANGUAGE))]]}


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
    report = {"languages": {"ours": sorted(labels), "all_three": sorted(shared), "only_ours": sorted(only_ours),
                            "not_the_language": sorted(NOT_THE_LANGUAGE)},
              "lines": {kind: len(v) for kind, v in lines.items()}, "results": {}}
    for kind, rows in lines.items():
        gold, texts = [lang for lang, _ in rows], [text for _, text in rows]
        compared = shared if kind == "ui string" else shared - NOT_THE_LANGUAGE
        answers, seconds = {}, {}
        for name, (predict, _) in systems.items():
            start = time.perf_counter()
            answers[name] = predict(texts)
            seconds[name] = round(time.perf_counter() - start, 2)
        report["results"][kind] = {
            name: {"all_three": accuracy(gold, answers[name], compared.__contains__),
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
