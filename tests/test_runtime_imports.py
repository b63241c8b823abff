"""The runtime tokenizer never imports torch, transformers, optimum or the exporter package."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from xlm_onnx.tokenization.moses import VERIFIED_SACREMOSES_VERSIONS, sacremoses_version

BLOCKED = ("torch", "transformers", "optimum", "xlm_onnx_export")

CHILD = textwrap.dedent(
    """
    import json, sys
    BLOCKED = {blocked!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {{name}} in the runtime")
            return None

    sys.meta_path.insert(0, Blocker())
    import xlm_onnx
    from xlm_onnx import XLMTokenizer
    tok = XLMTokenizer.from_pretrained(sys.argv[1])
    ids = tok.encode("Hello <special1> world, it's 5 p.m. — «ça va» 👍🏽 文字")
    batch = tok.encode_batch(["a b", "c"], max_length=4, truncation=True)
    result = {{"ids": ids, "tokens": tok.tokenize("Ünïcode"), "decoded": tok.decode(ids),
               "batch": batch["input_ids"].tolist(),
               "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
               "sacremoses": "sacremoses" in sys.modules}}
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS, write_xlm_vocab

    return write_xlm_vocab(SAMPLE_TEXTS, tmp_path_factory.mktemp("tok"), num_merges=200)


def test_tokenizer_runs_with_heavy_packages_blocked(tokenizer_dir):
    code = CHILD.format(blocked=BLOCKED)
    proc = subprocess.run([sys.executable, "-c", code, str(tokenizer_dir)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    if sacremoses_version() in VERIFIED_SACREMOSES_VERSIONS:  # the port reads its tables, never imports it
        assert result["sacremoses"] is False
    assert result["ids"][0] == 0 and result["ids"][-1] == 1 and 5 in result["ids"]
    assert result["batch"][0][0] == 0 and len(result["batch"][0]) <= 4


def test_blocker_is_effective():
    """The same child harness does fail when the runtime imports a blocked package."""
    code = CHILD.format(blocked=BLOCKED).replace("import xlm_onnx\n", "import xlm_onnx\nimport xlm_onnx_export\n", 1)
    proc = subprocess.run([sys.executable, "-c", code, "unused"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "blocked import of xlm_onnx_export" in proc.stderr
