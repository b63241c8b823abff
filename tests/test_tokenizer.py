"""Our torch-free XLMTokenizer vs ``transformers.XLMTokenizer`` on the same files (no ../shared needed).

Every check compares with the reference loaded from the same directory, or with a literal value.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from xlm_onnx.errors import TokenizerFileError
from xlm_onnx.tokenization import XLMTokenizer, pretokenize

transformers = pytest.importorskip("transformers")
Ref = transformers.XLMTokenizer

from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS, SPECIAL_TOKENS, tokenizer_config, write_xlm_vocab  # noqa: E402

TRICKY = [
    "", " ", "\n\t ", "foo<special1>bar", " <special1> ", "<special1>", "<s>", "</s>", "a</s>b<s>c", "<special10>",
    "<spec ial1>", "<<special1>>", "x <pad> y <unk> z", "It's 'quoted'.", "Mr. Smith met Dr. Who at 5 p.m. today.",
    "No. 5 and No. five", "a...b .... c..", "DOTMULTI and THISISPROTECTED000", "(a) [b] {c} <d>", "x--y - z",
    "5,300 and A,B,C", "l'homme d'État", "\x00\x01ab\x7f\x9f", "ＡＢＣ１２３，。　x．y", "İstanbul ß ﬁ",
    "e\u0301te\u0301",
    "zero\u200bwidth\ufeff", "emoji 👍🏽 👨‍👩‍👧", "https://example.org/a_b?c=1 info@example.org", "«\u00a0oui\u00a0»",
    "50\u00a0% nº\u00a05 1\u00a0000", "“Hello,” she said — “bye”…", "can't won't gonna", "\ud800 lone surrogate",
    "☃ snowman (not in the sample vocab)", "a\r\nb\rc", "tab\tsep", "’tis ‘x’ ‚y‘", "1'5 5's", "a/b a|b a&b",
]


def _build(tmp_path_factory, name: str, **kwargs) -> Path:
    return write_xlm_vocab(SAMPLE_TEXTS, tmp_path_factory.mktemp(name), num_merges=500, **kwargs)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    return _build(tmp_path_factory, "sample")


@pytest.fixture(scope="module")
def pair(sample_dir):
    return XLMTokenizer.from_pretrained(sample_dir), Ref.from_pretrained(sample_dir)


def _assert_same(ours, ref, texts):
    for text in texts:
        ids = ref.encode(text)
        assert ours.tokenize(text) == ref.tokenize(text), repr(text)
        assert ours.encode(text) == ids, repr(text)
        assert ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
        assert ours.decode(ids) == ref.decode(ids), repr(text)
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), repr(text)


def test_sample_and_tricky_texts_identical(pair):
    _assert_same(*pair, SAMPLE_TEXTS + TRICKY)


def test_bpe_identical_including_repeated_pairs(pair):
    ours, ref = pair
    words = {w for text in SAMPLE_TEXTS for w in pretokenize(text) if w}
    words |= {unit * k for unit in ("a", "e", "s", "an", "en", "ion", ".", "aba", "ss") for k in range(1, 25)}
    assert [ours._bpe(w) for w in sorted(words)] == [tuple(ref.bpe(w).split(" ")) for w in sorted(words)]
    assert ours._bpe("x") == ("x</w>",) and ours._bpe("an")[-1].endswith("</w>")


def test_special_tokens_are_split_out(pair):
    ours, ref = pair
    assert ours.encode("<special1>") == [0, 5, 1] == ref.encode("<special1>")
    toks = ours.tokenize("foo<special1>bar")
    assert toks[toks.index("<special1>") + 1 :] == ref.tokenize("bar")
    assert ours.tokenize(" <special1> ") == ["<special1>"] == ref.tokenize(" <special1> ")
    assert ours.encode("</s><s>", add_special_tokens=False) == [1, 0]
    assert ours.tokenize("") == [] and ours.encode("") == [0, 1] == ref.encode("")


def test_unknown_character_is_unk(pair):
    ours, ref = pair
    assert "☃</w>" not in ours.encoder
    assert ours.encode("☃") == [0, 3, 1] == ref.encode("☃")
    assert ours.unk_token_id == 3


def test_text_pairs(pair):
    ours, ref = pair
    a, b = SAMPLE_TEXTS[0], SAMPLE_TEXTS[30]
    got = ours.encode(a, b)
    assert got == ref.encode(a, b)
    na = len(ours.encode(a, add_special_tokens=False))
    assert got[0] == 0 and got[na + 1] == 1 and got[-1] == 1
    assert ours.encode(a, b, add_special_tokens=False) == ref.encode(a, b, add_special_tokens=False)


def test_properties_match_reference(pair):
    ours, ref = pair
    for attr in ("mask_token", "pad_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token_id",
                 "pad_token_id", "bos_token_id", "unk_token_id", "sep_token_id", "cls_token_id", "vocab_size",
                 "all_special_ids", "all_special_tokens", "do_lowercase_and_remove_accent"):
        assert getattr(ours, attr) == getattr(ref, attr), attr
    assert (ours.mask_token, ours.mask_token_id, ours.pad_token_id, ours.bos_token_id) == ("<special1>", 5, 2, 0)
    assert len(ours) == len(ref)
    # Deliberate: the reference has no eos_token for XLM (None); ours falls back to </s>.
    assert ref.eos_token_id is None and ours.eos_token_id == ref.sep_token_id == 1
    assert ours.convert_ids_to_tokens([0, 5, 10**6]) == ref.convert_ids_to_tokens([0, 5, 10**6])
    assert ours.convert_tokens_to_ids(["<s>", "zzz", "a"]) == ref.convert_tokens_to_ids(["<s>", "zzz", "a"])


def test_decode_variants(pair):
    ours, ref = pair
    ids = ref.encode("Hello, it's me. <special1> ok?")
    for arg in (ids, np.array(ids), ids + [10**6, -1], [ids, ids[:3]], ids[1]):
        for skip in (False, True):
            for clean in (None, True):
                assert ours.decode(arg, skip, clean) == ref.decode(arg, skip_special_tokens=skip,
                                                                   clean_up_tokenization_spaces=clean)


def test_encode_batch_matches_reference(pair):
    ours, ref = pair
    texts = SAMPLE_TEXTS[:12] + ["", "<special1>"]
    got = ours.encode_batch(texts)
    want = ref(texts, padding=True)
    assert got["input_ids"].dtype == np.int64 and got["attention_mask"].dtype == np.int64
    assert got["input_ids"].tolist() == want["input_ids"]
    assert got["attention_mask"].tolist() == want["attention_mask"]
    for n in (1, 2, 3, 8):
        got = ours.encode_batch(texts, max_length=n, truncation=True)
        want = ref(texts, padding=True, truncation=True, max_length=n)
        assert got["input_ids"].tolist() == want["input_ids"], n
        assert got["attention_mask"].tolist() == want["attention_mask"], n
    got = ours.encode_batch(texts, max_length=8, truncation=True)
    assert got["input_ids"].shape == (len(texts), 8) and (got["input_ids"][:12, -1] == 1).all()  # </s> kept
    assert ours.encode_batch([])["input_ids"].shape == (0, 0)


def test_non_str_text_raises_type_error(pair):
    ours, _ = pair
    for bad in (None, b"bytes", 123, ["a"]):
        with pytest.raises(TypeError, match=type(bad).__name__):
            ours.tokenize(bad)
        with pytest.raises(TypeError, match=type(bad).__name__):
            ours.encode(bad)
    with pytest.raises(TypeError, match="bytes"):
        ours.encode("ok", b"pair")
    with pytest.raises(TypeError, match="int"):
        ours.encode_batch(["ok", 5])
    with pytest.raises(TypeError, match="str"):
        ours.encode_batch("not a list")


@pytest.mark.parametrize("lang", ["zh", "ja", "th"])
def test_custom_segmenter_languages_unsupported(pair, lang):
    with pytest.raises(ValueError, match="unsupported"):
        pair[0].tokenize("文字", lang=lang)


def test_lang_selects_moses_rules(pair):
    ours, ref = pair
    text = "L'homme qu'il voit, l'été."
    assert ours.tokenize(text, lang="fr") == ref._tokenize(text, lang="fr")
    assert ours.tokenize(text, lang="en") == ref._tokenize(text, lang="en")
    assert ours.tokenize(text, lang="fr") != ours.tokenize(text, lang="en")


@pytest.mark.parametrize("config", ["cased", "lowercase", "missing", "no_key", "do_lower_case_only"])
def test_lowercase_configurations(tmp_path, sample_dir, config):
    d = tmp_path / config
    shutil.copytree(sample_dir, d)
    cfg = {"cased": tokenizer_config(False), "lowercase": tokenizer_config(True),
           "no_key": {"model_max_length": 512}, "do_lower_case_only": {"do_lower_case": False}}.get(config)
    if cfg is None:
        (d / "tokenizer_config.json").unlink()
    else:
        (d / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    assert ours.do_lowercase_and_remove_accent == ref.do_lowercase_and_remove_accent
    _assert_same(ours, ref, SAMPLE_TEXTS[:20] + TRICKY)
    # The setting must show: lowercasing maps "Élan" and "elan" to the same ids.
    same = ours.encode("Élan Über") == ours.encode("elan uber")
    assert same == ref.do_lowercase_and_remove_accent


def test_missing_config_default_equals_reference(tmp_path_factory):
    d = _build(tmp_path_factory, "nocfg", write_tokenizer_config=False, write_special_tokens_map=False)
    assert not (d / "tokenizer_config.json").exists()
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    assert ours.do_lowercase_and_remove_accent == ref.do_lowercase_and_remove_accent
    _assert_same(ours, ref, SAMPLE_TEXTS[:10])


def test_special_tokens_map_without_config(tmp_path, sample_dir):
    d = tmp_path / "map"
    shutil.copytree(sample_dir, d)
    (d / "tokenizer_config.json").unlink()
    smap = json.loads((d / "special_tokens_map.json").read_text(encoding="utf-8"))
    smap["mask_token"] = "<special3>"
    smap["additional_special_tokens"] = ["<special3>", "<special4>"]
    (d / "special_tokens_map.json").write_text(json.dumps(smap), encoding="utf-8")
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    assert (ours.mask_token, ours.mask_token_id) == (ref.mask_token, ref.mask_token_id) == ("<special3>", 7)
    assert ours.all_special_ids == ref.all_special_ids
    _assert_same(ours, ref, ["a <special3> b<special4>c <special5>", "<special0>"])


def test_added_token_flags_and_new_tokens(tmp_path, sample_dir):
    d = tmp_path / "flags"
    shutil.copytree(sample_dir, d)
    cfg = tokenizer_config(False)
    cfg["added_tokens_decoder"]["5"].update(lstrip=True, rstrip=True)
    cfg["added_tokens_decoder"]["4"].update(single_word=True)
    n = len(json.loads((d / "vocab.json").read_text(encoding="utf-8")))
    cfg["added_tokens_decoder"][str(n)] = {"content": "<new>", "lstrip": False, "normalized": True, "rstrip": False,
                                           "single_word": False, "special": False}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    texts = ["a <special1> b", "a<special1>b", "x <special0> y", "x<special0>y", "q <special0>", "<new>x <new> y",
             "  <special1>  <special0>  ", "\t<special1>\n"]
    _assert_same(ours, ref, texts)
    assert ours.encode("<new>", add_special_tokens=False) == [n]
    assert "<special0>" not in ours.tokenize("x<special0>y")  # single_word: glued to the word
    assert "<special0>" in ours.tokenize("x <special0> y")
    assert ours.all_special_ids == ref.all_special_ids and len(ours) == len(ref)


def test_split_special_tokens_config(tmp_path, sample_dir):
    d = tmp_path / "split"
    shutil.copytree(sample_dir, d)
    cfg = tokenizer_config(False)
    cfg["split_special_tokens"] = True
    (d / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    _assert_same(ours, ref, ["a <special1> b", "<s>"])
    assert "<special1>" not in ours.tokenize("a <special1> b")


def test_model_max_length_truncation(tmp_path, sample_dir):
    d = tmp_path / "maxlen"
    shutil.copytree(sample_dir, d)
    (d / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(False, model_max_length=6)), encoding="utf-8")
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    got = ours.encode_batch(SAMPLE_TEXTS[:5], truncation=True)
    assert got["input_ids"].tolist() == ref(SAMPLE_TEXTS[:5], padding=True, truncation=True)["input_ids"]
    assert got["input_ids"].shape == (5, 6)


@pytest.mark.parametrize("variant", ["two_fields", "crlf", "no_final_newline"])
def test_merges_file_variants(tmp_path, sample_dir, variant):
    d = tmp_path / variant
    shutil.copytree(sample_dir, d)
    lines = (sample_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert all(len(line.split()) == 3 for line in lines)  # XLM-100 style "a b count"
    if variant == "two_fields":
        body = "".join(" ".join(line.split()[:2]) + "\n" for line in lines)
    elif variant == "crlf":
        body = "".join(line + "\r\n" for line in lines)
    else:
        body = "\n".join(lines)
    (d / "merges.txt").write_bytes(body.encode("utf-8"))
    ours, ref = XLMTokenizer.from_pretrained(d), Ref.from_pretrained(d)
    assert ours.bpe_ranks == ref.bpe_ranks
    _assert_same(ours, ref, SAMPLE_TEXTS[:15])


@pytest.mark.parametrize("missing", ["vocab.json", "merges.txt"])
def test_missing_file_raises_tokenizer_file_error(tmp_path, sample_dir, missing):
    d = tmp_path / "broken"
    shutil.copytree(sample_dir, d)
    (d / missing).unlink()
    with pytest.raises(TokenizerFileError, match=missing) as info:
        XLMTokenizer.from_pretrained(d)
    assert isinstance(info.value, FileNotFoundError) and str(d / missing) in str(info.value)


@pytest.mark.parametrize("name", ["vocab.json", "tokenizer_config.json", "special_tokens_map.json"])
def test_corrupt_json_raises_tokenizer_file_error(tmp_path, sample_dir, name):
    d = tmp_path / "corrupt"
    shutil.copytree(sample_dir, d)
    if name == "special_tokens_map.json":
        (d / "tokenizer_config.json").unlink()  # the map is only read without a config
    (d / name).write_text('{"<s>": 0, "broken', encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=name) as info:
        XLMTokenizer.from_pretrained(d)
    assert str(d / name) in str(info.value)


def test_vocab_writer_layout_and_determinism(tmp_path, sample_dir):
    vocab = json.loads((sample_dir / "vocab.json").read_text(encoding="utf-8"))
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(14))
    assert sorted(vocab.values()) == list(range(len(vocab)))
    chars = {c for text in SAMPLE_TEXTS for w in pretokenize(text) for c in w}
    assert all(c in vocab and c + "</w>" in vocab for c in chars)
    merges = (sample_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert 300 <= len(merges) <= 500 and all(int(m.split()[2]) >= 2 for m in merges)
    again = write_xlm_vocab(SAMPLE_TEXTS, tmp_path / "again", num_merges=500)  # speed: benchmarks/, not here
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
        assert (again / name).read_bytes() == (sample_dir / name).read_bytes(), name  # deterministic


def test_written_config_is_what_reference_saves(tmp_path, sample_dir):
    ref = Ref(str(sample_dir / "vocab.json"), str(sample_dir / "merges.txt"), do_lowercase_and_remove_accent=False)
    ref.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    ours = json.loads((sample_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert ours == saved
    # Round trip through the reference (it adds a few keys when re-saving) stays cased for both.
    Ref.from_pretrained(sample_dir).save_pretrained(tmp_path / "resaved")
    shutil.copy(sample_dir / "vocab.json", tmp_path / "resaved" / "vocab.json")
    for d in (sample_dir, tmp_path / "resaved"):
        assert Ref.from_pretrained(d).do_lowercase_and_remove_accent is False
        assert XLMTokenizer.from_pretrained(d).do_lowercase_and_remove_accent is False
        assert XLMTokenizer.from_pretrained(d).encode("Élan") == Ref.from_pretrained(d).encode("Élan")


def test_long_words_bpe_identical(pair):
    """Words past ``HEAP_FROM`` take the heap merge loop: the same pieces as the reference,
    including runs of one repeated pair (merged left to right without overlap)."""
    import random

    from xlm_onnx.tokenization.bpe import HEAP_FROM

    ours, ref = pair
    rng = random.Random(0)
    vocab_letters = "".join(sorted({c for text in SAMPLE_TEXTS for c in text if c.isalpha()}))
    words = ["a" * 501, "ab" * 300, "aba" * 99, "ss" * 77 + "s", "ion" * 60]
    for n in (HEAP_FROM + 1, 97, 256, 1000):
        for alphabet in ("ae", "ens", "aeinorst", vocab_letters):
            words.append("".join(rng.choice(alphabet) for _ in range(n)))
    assert [ours._bpe(w) for w in words] == [tuple(ref.bpe(w).split(" ")) for w in words]
    assert all(len(w) > HEAP_FROM for w in words)


def test_caches_are_bounded_in_bytes(sample_dir):
    """Distinct long words fill the word caches up to their byte budget, never past it."""
    tok = XLMTokenizer.from_pretrained(sample_dir)
    tok._bpe.cache.max_bytes = tok._ids_cache.max_bytes = 200_000
    for i in range(300):
        tok.encode(f"{i:04d}" + "aeinorst" * 40)  # 324 letters each: ~10 kB of pieces per word
    assert 0 < tok._bpe.cache.bytes <= 200_000 and 0 < tok._ids_cache.bytes <= 200_000
    assert len(tok._bpe.cache) < 300


def test_character_tables_are_bounded(pair):
    """Text holding more distinct characters than a table keeps tokenizes the same; the tables
    stop growing at their bound (every code point would be ~100 MB a table)."""
    from xlm_onnx.tokenization import moses as _moses
    from xlm_onnx.tokenization.moses_data import _CharTable

    ours, ref = pair
    text = " ".join(chr(c) + "a" for c in range(0x4E00, 0x4E00 + 3000))  # CJK ideographs, ~3,000 new characters
    saved = _CharTable.MAX_ENTRIES
    _CharTable.MAX_ENTRIES = len(_moses._NON_PRINTING) + 100
    try:
        assert ours.tokenize(text) == ref.tokenize(text)
        assert len(_moses._NON_PRINTING) <= _CharTable.MAX_ENTRIES
    finally:
        _CharTable.MAX_ENTRIES = saved
