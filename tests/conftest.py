"""Shared fixtures: tiny random XLM checkpoints and their exports, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLM_ONNX_SHARED", REPO.parent / "shared"))
UDHR = SHARED / "data" / "udhr_xlm_dev.jsonl"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """2 layers x 64, 4 heads, no language embeddings (like XLM-100), BPE from SAMPLE_TEXTS."""
    from xlm_onnx_export.fixtures.checkpoints import TINY, make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", TINY, seed=0)


@pytest.fixture(scope="session")
def tiny_lang_checkpoint(tmp_path_factory) -> Path:
    """3 layers x 64 with language embeddings (en, fr, de)."""
    from xlm_onnx_export.fixtures.checkpoints import Arch, make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-lang", Arch(n_layers=3), use_lang_emb=True, seed=1)


def _export(tmp_path_factory, checkpoint: Path, name: str, **kwargs) -> Path:
    from xlm_onnx_export import Exporter

    out = tmp_path_factory.mktemp("exports") / name
    Exporter(checkpoint, out, progress=False, **kwargs).run()
    return out


@pytest.fixture(scope="session")
def fp32_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    """Fused fp32 export of ``tiny_checkpoint``."""
    return _export(tmp_path_factory, tiny_checkpoint, "fp32")


@pytest.fixture(scope="session")
def fp32_unfused_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, "fp32-unfused", optimize=False)


@pytest.fixture(scope="session")
def lang_dir(tmp_path_factory, tiny_lang_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_lang_checkpoint, "fp32-lang")


@pytest.fixture(scope="session")
def hf_pipeline(tiny_checkpoint):
    from transformers import pipeline

    return pipeline("fill-mask", model=str(tiny_checkpoint), tokenizer=str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def fp16_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, "fp16", precision="fp16")


@pytest.fixture(scope="session")
def int8_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, "int8", precision="int8")


@pytest.fixture(scope="session")
def v1_dir(tmp_path_factory, fp32_dir) -> Path:
    """``fp32_dir`` rewritten as a format-1 directory: fill-mask outputs only, no ``label_ids``
    input, no ``heads`` in the manifest, a version-1 golden file."""
    import json
    import shutil

    import onnx
    from onnx.utils import Extractor

    from xlm_onnx import format as fmt

    out = tmp_path_factory.mktemp("exports") / "fp32-v1"
    shutil.copytree(fp32_dir, out)
    manifest = json.loads((out / fmt.MANIFEST_FILE).read_text())
    inputs = [name for name in manifest["inputs"] if name != fmt.LABEL_IDS]
    graph = Extractor(onnx.load(out / fmt.MODEL_FILE)).extract_model(inputs, list(fmt.FILL_MASK_OUTPUTS))
    (out / fmt.MODEL_DATA_FILE).unlink()
    onnx.save(graph, out / fmt.MODEL_FILE, save_as_external_data=True, location=fmt.MODEL_DATA_FILE)
    golden = json.loads((out / fmt.GOLDEN_FILE).read_text())
    for key in ("labels", "label_log_probs", "embeddings"):
        del golden[key]
    (out / fmt.GOLDEN_FILE).write_text(json.dumps({**golden, "golden_version": 1}) + "\n")
    del manifest["heads"]
    manifest.update(format_version=1, inputs=inputs, outputs=list(fmt.FILL_MASK_OUTPUTS),
                    files=fmt.describe_files(out, list(manifest["files"])))
    (out / fmt.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


#: Tiny classifier checkpoints the classification tests share, by name: (architecture, labels,
#: problem_type, summary_activation, language embeddings).
CLASSIFIERS = {
    "single": ("XLMForSequenceClassification", ("negative", "neutral", "positive"), "single_label_classification",
               "tanh", False),
    "multi": ("XLMForSequenceClassification", ("art", "sport", "war", "food"), "multi_label_classification",
              None, False),
    "regression": ("XLMForSequenceClassification", ("LABEL_0",), "regression", None, False),
    "default": ("XLMForSequenceClassification", ("LABEL_0", "LABEL_1"), None, "gelu", True),
    "nli": ("XLMForSequenceClassification", ("contradiction", "entailment", "neutral"), None, "tanh", False),
    "choice": ("XLMForMultipleChoice", ("LABEL_0", "LABEL_1"), None, "tanh", False),
    "ner": ("XLMForTokenClassification", ("O", "B-PER", "I-PER", "B-LOC", "I-LOC"), None, None, False),
    "qa": ("XLMForQuestionAnsweringSimple", ("LABEL_0", "LABEL_1"), None, None, False),
}


@pytest.fixture(scope="session")
def classifier_checkpoint(tmp_path_factory):
    """``classifier_checkpoint(name)``: the tiny :data:`CLASSIFIERS` checkpoint ``name`` (built once).

    Short positions (64; fewer do not fuse) so truncation is reached by ordinary sentences; the tokenizer's
    ``model_max_length`` says the same, as a real checkpoint's does."""
    import json

    from xlm_onnx_export.fixtures.checkpoints import Arch, Head, make_checkpoint

    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            arch, labels, problem, activation, langs = CLASSIFIERS[name]
            out = make_checkpoint(tmp_path_factory.mktemp("ckpt") / name, Arch(max_positions=64), use_lang_emb=langs,
                                  seed=len(made) + 3, head=Head(arch, labels, problem, activation))
            config = out / "tokenizer_config.json"
            data = json.loads(config.read_text()) if config.is_file() else {}
            config.write_text(json.dumps({**data, "model_max_length": 64}))
            made[name] = out
        return made[name]

    return get


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory, classifier_checkpoint):
    """``classifier_dir(name, precision="fp32")``: the export of a :data:`CLASSIFIERS` checkpoint."""
    made: dict[tuple[str, str], Path] = {}

    def get(name: str, precision: str = "fp32") -> Path:
        if (name, precision) not in made:
            made[name, precision] = _export(tmp_path_factory, classifier_checkpoint(name), f"{name}-{precision}",
                                            precision=precision)
        return made[name, precision]

    return get
