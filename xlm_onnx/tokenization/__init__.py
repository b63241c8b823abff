"""The torch-free XLM tokenizer (equal to ``transformers.XLMTokenizer``) and the layers under it.

``tokenizer`` (:class:`XLMTokenizer`, :func:`pretokenize`) ← ``files`` (reads ``vocab.json``,
``merges.txt`` and the tokenizer configs) ← ``added_tokens`` (the special/added-token trie),
``moses`` + ``moses_port`` + ``moses_data`` (Moses normalisation and tokenization), ``bpe``.
"""

from .tokenizer import XLMTokenizer, pretokenize

__all__ = ["XLMTokenizer", "pretokenize"]
