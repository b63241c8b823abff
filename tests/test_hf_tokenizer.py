"""transformers' XLMTokenizer tests and the common tokenizer tests that apply to inference, ported and
run against both libraries (``transformers.XLMTokenizer`` and ours, loaded from the same files).

From ``tests/models/xlm/test_tokenization_xlm.py``: the Sennrich vocabulary (``test_full_tokenizer``),
``test_sequence_builders``, its input/output texts. From ``tests/test_tokenization_common.py``: calling
the tokenizer, pickling, saving and loading, special-token masks, the number of added specials,
padding and truncation on both sides, batch lengths, internal consistency, reversible conversion,
``batch_decode``, the added-token maps. What xlm-onnx does differently on purpose is tested as such
here and listed in docs/guides/coming-from-transformers.md.
"""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from xlm_onnx import InputError, InputTypeError
from xlm_onnx.tokenization import XLMTokenizer

transformers = pytest.importorskip("transformers")
Ref = transformers.XLMTokenizer

from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS, write_xlm_vocab  # noqa: E402

TEXTS = SAMPLE_TEXTS[:6] + ["", "a", "Hello <special1> world </s>"]


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    return write_xlm_vocab(SAMPLE_TEXTS, tmp_path_factory.mktemp("hf-sample"), num_merges=500)


@pytest.fixture(params=["transformers", "xlm_onnx"])
def tok(request, sample_dir):
    """Each library's tokenizer on the same files (a fresh one per test: some set padding_side)."""
    return (Ref if request.param == "transformers" else XLMTokenizer).from_pretrained(sample_dir)


@pytest.fixture
def both(sample_dir):
    return XLMTokenizer.from_pretrained(sample_dir), Ref.from_pretrained(sample_dir)


# --- tests/models/xlm/test_tokenization_xlm.py ---------------------------------------------------------
@pytest.fixture(scope="module")
def sennrich_dir(tmp_path_factory) -> Path:
    vocab = ["l", "o", "w", "e", "r", "s", "t", "i", "d", "n", "w</w>", "r</w>", "t</w>", "lo", "low", "er</w>",
             "low</w>", "lowest</w>", "newer</w>", "wider</w>", "<unk>"]
    d = tmp_path_factory.mktemp("sennrich")
    (d / "vocab.json").write_text(json.dumps(dict(zip(vocab, range(len(vocab))))))
    (d / "merges.txt").write_text("\n".join(["l o 123", "lo w 1456", "e r</w> 1789", ""]))
    return d


@pytest.mark.parametrize("lib", [Ref, XLMTokenizer], ids=["transformers", "xlm_onnx"])
def test_full_tokenizer(sennrich_dir, lib):
    tokenizer = lib.from_pretrained(sennrich_dir)
    tokens = tokenizer.tokenize("lower")
    assert tokens == ["low", "er</w>"]
    assert tokenizer.convert_tokens_to_ids(tokens + ["<unk>"]) == [14, 15, 20]
    ids = tokenizer.encode("lower newer", add_special_tokens=False)
    assert tokenizer.decode(ids) == "lower newer"  # get_input_output_texts


def test_sequence_builders(tok):
    text = tok.encode("sequence builders", add_special_tokens=False)
    text_2 = tok.encode("multi-sequence build", add_special_tokens=False)
    assert tok.build_inputs_with_special_tokens(text) == [0] + text + [1]
    assert tok.build_inputs_with_special_tokens(text, text_2) == [0] + text + [1] + text_2 + [1]


# --- tests/test_tokenization_common.py -----------------------------------------------------------------
def test_call_single_pair_and_batch(both):
    ours, ref = both
    for args in ((TEXTS[0],), (TEXTS[0], TEXTS[1]), (TEXTS,), (TEXTS, TEXTS[::-1])):
        assert dict(ours(*args)) == dict(ref(*args)), args
    assert set(ours(TEXTS[0])) == set(ref.model_input_names) == set(ours.model_input_names)  # no token_type_ids
    assert ours(TEXTS[0]).input_ids == ref(TEXTS[0]).input_ids  # attribute access, as BatchEncoding
    for got, want in zip(ours(TEXTS, padding=True, return_tensors="np").values(),
                         ref(TEXTS, padding=True, return_tensors="np").values()):
        assert got.dtype == np.int64 and got.tolist() == want.tolist()


def test_pickle_tokenizer(tok):
    before = tok.tokenize("Munich and Berlin")  # tokenizing first builds the caches that did not pickle
    restored = pickle.loads(pickle.dumps(tok))
    assert restored.tokenize("Munich and Berlin") == before
    assert restored("a b c") == tok("a b c")


def test_save_and_load_tokenizer_across_libraries(both, tmp_path):
    ours, ref = both
    for name, saver in (("ours", ours), ("ref", ref)):
        saver.save_pretrained(tmp_path / name)
        for loader in (XLMTokenizer, Ref):
            loaded = loader.from_pretrained(tmp_path / name)
            for text in TEXTS:
                assert loaded.encode(text) == ref.encode(text), (name, loader.__name__, text)
            assert loaded.get_vocab() == ref.get_vocab() and loaded.all_special_ids == ref.all_special_ids
            assert loaded.model_max_length == ref.model_max_length


def test_save_keeps_settings(sample_dir, tmp_path):
    ours = XLMTokenizer.from_pretrained(sample_dir)
    ours.padding_side = "left"
    paths = ours.save_pretrained(tmp_path)
    assert sorted(Path(p).name for p in paths) == ["merges.txt", "tokenizer_config.json", "vocab.json"]
    for loader in (XLMTokenizer, Ref):
        assert loader.from_pretrained(tmp_path).padding_side == "left"


def test_special_tokens_mask(tok):
    for pair in (None, TEXTS[1]):
        plain = tok.encode(TEXTS[0], pair, add_special_tokens=False)
        out = tok(TEXTS[0], pair, return_special_tokens_mask=True)
        mask = out["special_tokens_mask"]
        assert len(mask) == len(out["input_ids"])
        assert [x for x, m in zip(out["input_ids"], mask) if not m] == plain
    ids = tok.encode(TEXTS[0])
    assert tok.get_special_tokens_mask(ids, already_has_special_tokens=True) == [1] + [0] * (len(ids) - 2) + [1]


def test_get_special_tokens_mask_equal(both):
    ours, ref = both
    for args, kw in ((([5, 6, 7],), {}), (([5, 6], [7]), {}),
                     (([0, 5, 1, 9, 40],), {"already_has_special_tokens": True})):
        assert ours.get_special_tokens_mask(*args, **kw) == ref.get_special_tokens_mask(*args, **kw)


def test_number_of_added_tokens(tok):
    for pair in (None, TEXTS[1]):
        with_specials = tok.encode(TEXTS[0], pair)
        without = tok.encode(TEXTS[0], pair, add_special_tokens=False)
        assert len(with_specials) - len(without) == tok.num_special_tokens_to_add(pair=pair is not None)


def test_padding_and_truncation_equal_on_both_sides(both):
    """``test_right_and_left_padding``, ``test_right_and_left_truncation``, ``test_padding_to_max_length``,
    ``test_maximum_encoding_length_*_input``, ``test_padding_to_multiple_of``: every combination
    compared with the reference, for one text, a pair and a batch."""
    ours, ref = both
    grid = itertools.product(["right", "left"], [False, True, "max_length"],
                             [None, False, True, "only_first", "only_second", "longest_first"], [None, 3, 7, 40])
    for side, padding, truncation, max_length in grid:
        for t in (ours, ref):
            t.padding_side = t.truncation_side = side
        for text, pair in ((TEXTS[0], None), (TEXTS[0], "x y z w"), (TEXTS, None), (TEXTS, TEXTS[::-1])):
            for extra in ({}, {"pad_to_multiple_of": 8},
                          {"return_token_type_ids": True, "return_special_tokens_mask": True, "return_length": True}):
                args = dict(padding=padding, truncation=truncation, max_length=max_length, **extra)
                try:
                    want = dict(ref(text, pair, **args))
                except ValueError as exc:  # truncation length not a multiple of pad_to_multiple_of
                    with pytest.raises(InputError, match="multiple"):
                        ours(text, pair, **args)
                    assert "multiple" in str(exc)
                    continue
                assert dict(ours(text, pair, **args)) == want, (side, args, pair)


def test_encode_takes_call_arguments(both):
    ours, ref = both
    for kwargs in ({"max_length": 4, "truncation": True}, {"padding": "max_length", "max_length": 40},
                   {"max_length": 5}, {"padding": "max_length", "max_length": 40, "padding_side": "left"}):
        assert ours.encode(TEXTS[0], **kwargs) == ref.encode(TEXTS[0], **kwargs), kwargs


def test_internal_consistency_and_conversion(both):
    ours, ref = both
    for text in TEXTS:
        tokens = ours.tokenize(text)
        ids = ours.convert_tokens_to_ids(tokens)
        assert ids == ours.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
        unk = ours.unk_token_id  # "H" is not in the sample vocabulary: it reads back as <unk>
        assert ours.convert_ids_to_tokens(ids) == [t if i != unk else "<unk>" for t, i in zip(tokens, ids)]
    vocab = ours.get_vocab()
    assert all(ours.convert_tokens_to_ids(w) == i and ours.convert_ids_to_tokens(i) == w for w, i in vocab.items())


def test_batch_decode(both):
    ours, ref = both
    rows = ref(TEXTS, padding=True)["input_ids"]
    for skip in (False, True):
        assert ours.batch_decode(rows, skip_special_tokens=skip) == ref.batch_decode(rows, skip_special_tokens=skip)
        assert ours.batch_decode(np.array(rows), skip) == ours.batch_decode(rows, skip)


def test_added_token_maps(both):
    ours, ref = both
    assert ours.added_tokens_encoder == ref.added_tokens_encoder
    assert ours.get_added_vocab() == ref.get_added_vocab()
    assert list(ours.added_tokens_decoder) == list(ref.added_tokens_decoder)
    for index, token in ref.added_tokens_decoder.items():
        mine = ours.added_tokens_decoder[index]
        assert (mine.content, mine.lstrip, mine.rstrip, mine.single_word, mine.normalized, mine.special) == (
            token.content, token.lstrip, token.rstrip, token.single_word, token.normalized, token.special)


def test_common_properties(both):
    ours, ref = both
    for attr in ("bos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "padding_side",
                 "truncation_side", "model_max_length", "model_input_names", "all_special_tokens"):
        assert getattr(ours, attr) == getattr(ref, attr), attr


# --- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, 123, b"bytes"])
def test_non_string_text_is_value_error_in_both(both, bad):
    for t in both:
        with pytest.raises(ValueError):
            t(bad)
    with pytest.raises(InputTypeError):  # also a TypeError
        both[0].encode(bad)


def test_unavailable_options_name_themselves(both):
    ours, _ = both
    with pytest.raises(InputError, match="np"):
        ours("a", return_tensors="pt")
    with pytest.raises(InputError, match="stride"):
        ours("a", stride=2)
    with pytest.raises(InputError, match="padding=True"):
        ours(["a", "a b c"], return_tensors="np")


# --- deliberate differences ----------------------------------------------------------------------------
def test_lang_applies_moses_rules_here_and_is_ignored_by_transformers(both):
    ours, ref = both
    text = "L'homme qu'il voit, l'été."
    assert ref.tokenize(text, lang="fr") == ref.tokenize(text)  # transformers 5 drops lang
    assert ours.tokenize(text, lang="fr") == ref._tokenize(text, lang="fr") != ours.tokenize(text)
    assert ours.tokenize(text) == ref.tokenize(text, lang="fr")  # leaving lang out: transformers' tokens
    assert ours(text)["input_ids"] == ref(text, lang="fr")["input_ids"]


@pytest.mark.parametrize("code", ["french", "EN", "", "f"])
def test_malformed_language_code_raises(both, code):
    ours, ref = both
    with pytest.raises(InputError, match="language code"):
        ours.tokenize("a b", lang=code)
    ref.tokenize("a b", lang=code)  # transformers accepts (and ignores) anything


def test_well_formed_code_without_rules_gets_moses_defaults(both):
    ours, _ = both
    assert ours.tokenize("a b.", lang="xx") == ours.tokenize("a b.", lang="en")  # no rule here differs
