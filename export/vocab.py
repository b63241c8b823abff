"""Learn a BPE vocabulary in the real XLM format (``vocab.json``, 3-field ``merges.txt``, configs).

Texts are pre-tokenized with the runtime tokenizer's own Moses pipeline
(:func:`xlm_onnx.tokenizer.pretokenize`), so the words BPE is learnt on are exactly the words the
tokenizer will later split. Merges are learnt fastBPE-style (most frequent adjacent pair first, ties
broken by the smaller pair, so the result is deterministic) with ``</w>`` glued to the last
character of each word, and written as ``a b count`` lines like XLM-100's ``merges.txt``.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from xlm_onnx import format as fmt
from xlm_onnx.tokenizer import pretokenize

#: XLM's special tokens in id order (defined once, in the format module).
SPECIAL_TOKENS = list(fmt.SPECIAL_TOKENS)
#: What ``transformers`` writes for ``model_max_length`` when none is configured (``int(1e30)``).
VERY_LARGE_INTEGER = int(1e30)

#: A small multilingual sample (Latin with accents, Cyrillic, Greek, Arabic, Hebrew, Devanagari,
#: Bengali, Tamil, CJK, Hangul, Thai, Georgian, Armenian, Ethiopic) for tiny test vocabularies.
SAMPLE_TEXTS = [
    "All human beings are born free and equal in dignity and rights.",
    "They are endowed with reason and conscience and should act towards one another in a spirit of brotherhood.",
    "The quick brown fox jumps over the lazy dog; it doesn't stop (not even at 3:45 p.m.).",
    "Dr. Smith paid $1,250.50 for 3 books in 2024 - isn't that a lot?",
    "Everyone has the right to life, liberty and security of person.",
    "No one shall be held in slavery or servitude: \"never again\", they said...",
    "Visit https://example.org/docs or write to info@example.org for details!",
    "Tous les êtres humains naissent libres et égaux en dignité et en droits.",
    "L'été dernier, nous sommes allés à la mer « pour voir les côtes ».",
    "Où est la bibliothèque ? C'est à côté de l'église.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "Die Straße ist schön, aber die Brücke über den Fluß ist „sehr“ alt.",
    "Todos los seres humanos nacen libres e iguales en dignidad y derechos.",
    "¿Dónde está el niño? ¡Mañana iremos al señor Núñez!",
    "Todos os seres humanos nascem livres e iguais em dignidade e em direitos.",
    "Tutti gli esseri umani nascono liberi ed eguali in dignità e diritti.",
    "Wszyscy ludzie rodzą się wolni i równi pod względem swej godności i swych praw.",
    "Všichni lidé rodí se svobodní a sobě rovní co do důstojnosti a práv.",
    "Bütün insanlar hür, haysiyet ve haklar bakımından eşit doğarlar.",
    "Tất cả mọi người sinh ra đều được tự do và bình đẳng về nhân phẩm và quyền lợi.",
    "Toate ființele umane se nasc libere și egale în demnitate și în drepturi.",
    "Alla människor är födda fria och lika i värde och rättigheter.",
    "Alle mensen worden vrij en gelijk in waardigheid en rechten geboren.",
    "Allir menn eru bornir frjálsir og jafnir öðrum að virðingu og réttindum.",
    "Kaikki ihmiset syntyvät vapaina ja tasavertaisina arvoltaan ja oikeuksiltaan.",
    "Minden emberi lény szabadnak születik és egyenlő méltósága és joga van.",
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "Они наделены разумом и совестью и должны поступать в отношении друг друга в духе братства.",
    "Усі люди народжуються вільними і рівними у своїй гідності та правах.",
    "Всички хора се раждат свободни и равни по достойнство и права.",
    "Сва људска бића рађају се слободна и једнака у достојанству и правима.",
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.",
    "Είναι προικισμένοι με λογική και συνείδηση· ας φέρονται με πνεύμα αδελφοσύνης.",
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
    "وقد وهبوا عقلاً وضميرًا وعليهم أن يعامل بعضهم بعضًا بروح الإخاء.",
    "تمام افراد بشر آزاد به دنیا می‌آیند و از لحاظ حیثیت و حقوق با هم برابرند.",
    "تمام انسان آزاد اور حقوق و عزت کے اعتبار سے برابر پیدا ہوئے ہیں۔",
    "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם.",
    "כולם חוננו בתבונה ובמצפון, לפיכך חובה עליהם לנהוג איש ברעהו ברוח של אחווה.",
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
    "उन्हें बुद्धि और अन्तरात्मा की देन प्राप्त है और परस्पर उन्हें भाईचारे के भाव से बर्ताव करना चाहिए।",
    "सर्व मानवी व्यक्ति जन्मतःच स्वतंत्र आहेत व त्यांना समान प्रतिष्ठा व समान अधिकार आहेत.",
    "সমস্ত মানুষ স্বাধীনভাবে সমান মর্যাদা এবং অধিকার নিয়ে জন্মগ্রহণ করে।",
    "மனிதப் பிறவியினர் சகலரும் சுதந்திரமாகவே பிறக்கின்றனர்.",
    "人人生而自由，在尊严和权利上一律平等。",
    "他们赋有理性和良心，并应以兄弟关系的精神相对待。",
    "人人生而自由，在尊嚴和權利上一律平等。",
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
    "東京は日本の首都です。カタカナとひらがなを使います！",
    "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
    "인간은 천부적으로 이성과 양심을 부여받았으며 서로 형제애의 정신으로 행동하여야 한다.",
    "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ",
    "ต่างในตนมีเหตุผลและมโนธรรม และควรปฏิบัติต่อกันด้วยเจตนารมณ์แห่งภราดรภาพ",
    "ყველა ადამიანი იბადება თავისუფალი და თანასწორი თავისი ღირსებითა და უფლებებით.",
    "Բոլոր մարդիկ ծնվում են ազատ ու հավասար իրենց արժանապատվությամբ ու իրավունքներով։",
    "የሰው ልጅ ሁሉ ሲወለድ ነጻና በክብርና በመብትም እኩልነት ያለው ነው።",
    "Numbers: 1 000 000, 3.14159, 50% off, 2 × 3 = 6, 10° and №5.",
    "Quotes ‘single’, “double”, «guillemets» and ‚low‘ — plus dashes – and … ellipses.",
    "Emoji: I ❤️ Paris 👍🏽 and 👨‍👩‍👧 families; math ∑ x² ≤ ∞.",
    "Tabs\tand  double  spaces,\nnew lines and non\u00a0breaking spaces.",
    "Wi-Fi, e-mail and co-operation are hyphen-ated words; so/or slashes too.",
    "It's the cat's toy, isn't it? We'll see; they're sure we've won.",
]


def _symbols(word: str) -> tuple[str, ...]:
    return tuple(word[:-1]) + (word[-1] + "</w>",)


def learn_bpe(word_counts: dict[str, int], num_merges: int, min_frequency: int = 2) -> list[tuple[str, str, int]]:
    """Merges ``(a, b, count)`` in order; stops early when no pair occurs ``min_frequency`` times."""
    words = [list(_symbols(w)) for w in word_counts]
    freqs = list(word_counts.values())
    counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = {}
    for wi, syms in enumerate(words):
        for pair in zip(syms, syms[1:]):
            counts[pair] += freqs[wi]
            where.setdefault(pair, set()).add(wi)
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str, int]] = []
    while heap and len(merges) < num_merges:
        neg, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -neg:
            continue  # stale entry: the current count was pushed when it changed
        if -neg < min_frequency:
            break
        merges.append((pair[0], pair[1], -neg))
        a, b = pair
        merged = a + b
        changed: set[tuple[str, str]] = set()
        for wi in where.pop(pair, ()):
            syms, f = words[wi], freqs[wi]
            for p in zip(syms, syms[1:]):
                counts[p] -= f
                changed.add(p)
            out, i, n = [], 0, len(syms)
            while i < n:  # left-to-right, non-overlapping: what XLMTokenizer.bpe does
                if i < n - 1 and syms[i] == a and syms[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[wi] = out
            for p in zip(out, out[1:]):
                counts[p] += f
                changed.add(p)
                where.setdefault(p, set()).add(wi)
        counts.pop(pair, None)
        for p in changed:
            c = counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                counts.pop(p, None)
    return merges


def _json_dump(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def tokenizer_config(do_lowercase_and_remove_accent: bool = False, model_max_length: int | None = None,
                     lang2id: dict[str, int] | None = None) -> dict:
    """What ``transformers.XLMTokenizer(...).save_pretrained`` (5.23) writes as tokenizer_config.json."""
    added = {
        str(i): {"content": tok, "lstrip": False, "normalized": False, "rstrip": False,
                 "single_word": False, "special": True}
        for i, tok in enumerate(SPECIAL_TOKENS)
    }
    return {
        "added_tokens_decoder": added,
        "backend": "custom",
        **fmt.XLM_TOKEN_DEFAULTS,
        "do_lowercase_and_remove_accent": bool(do_lowercase_and_remove_accent),
        "extra_special_tokens": list(fmt.XLM_EXTRA_SPECIAL_TOKENS),
        "id2lang": None if lang2id is None else {str(v): k for k, v in lang2id.items()},
        "lang2id": lang2id,
        "model_max_length": VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length),
        "tokenizer_class": "XLMTokenizer",
    }


def special_tokens_map() -> dict:
    """The legacy special_tokens_map.json of XLM checkpoints (read by transformers only without a config)."""
    return {"additional_special_tokens": list(fmt.XLM_EXTRA_SPECIAL_TOKENS), **fmt.XLM_TOKEN_DEFAULTS}


def write_xlm_vocab(texts: Iterable[str], out_dir, num_merges: int, *, do_lowercase_and_remove_accent: bool = False,
                    min_frequency: int = 2, write_tokenizer_config: bool = True, write_special_tokens_map: bool = True,
                    model_max_length: int | None = None, lang2id: dict[str, int] | None = None) -> Path:
    """Learn ``num_merges`` BPE merges from ``texts`` and write an XLM tokenizer into ``out_dir``.

    ``vocab.json`` holds the special tokens at XLM's ids (``<s>`` 0, ``</s>`` 1, ``<pad>`` 2, ``<unk>`` 3,
    ``<special0..9>`` 4..13), then every character of the texts both plain and with ``</w>`` (most
    frequent first), then each merge's result in merge order. Words are lowercased and stripped of
    accents first when ``do_lowercase_and_remove_accent`` (the tokenizer then does the same).
    ``write_tokenizer_config=False`` leaves the config out (transformers then lowercases by default).
    Returns ``out_dir`` as a Path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    word_counts: Counter = Counter()
    for text in texts:
        word_counts.update(w for w in pretokenize(text, "en", do_lowercase_and_remove_accent) if w)
    word_counts = dict(sorted(word_counts.items()))  # input-order independent
    merges = learn_bpe(word_counts, num_merges, min_frequency)

    sym_counts: Counter = Counter()
    for word, count in word_counts.items():
        for sym in _symbols(word):
            sym_counts[sym] += count
    chars = sorted({c for word in word_counts for c in word})
    base = {s: sym_counts.get(s, 0) for c in chars for s in (c, c + "</w>")}
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for sym in sorted(base, key=lambda s: (-base[s], s)):
        vocab.setdefault(sym, len(vocab))
    for a, b, _ in merges:
        vocab.setdefault(a + b, len(vocab))

    (out / fmt.VOCAB_FILE).write_text(json.dumps(vocab, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(out / fmt.MERGES_FILE, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(f"{a} {b} {count}\n" for a, b, count in merges)
    if write_tokenizer_config:
        _json_dump(tokenizer_config(do_lowercase_and_remove_accent, model_max_length, lang2id),
                   out / fmt.TOKENIZER_CONFIG_FILE)
    if write_special_tokens_map:
        _json_dump(special_tokens_map(), out / fmt.SPECIAL_TOKENS_FILE)
    return out
