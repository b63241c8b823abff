"""Accuracy of int8 activation schemes on the same int8 weights (used by ``int8_schemes.py``).

A per-row directory (the default export, or the shipped demo model) holds everything needed to
rebuild two twins with the *same* int8 weights, so schemes are compared on activations alone:

* ``per_tensor_twin``: every per-row int8 MatMul becomes onnxruntime's ``DynamicQuantizeMatMul``
  of the same float input (one scale per batch: the old scheme);
* ``float_twin``: the same weights dequantized, float activations: the reference that isolates
  activation error when no fp32 export exists (the demo model's float checkpoint is not kept).

``compare`` runs masked lines through each and reports, against a reference directory, top-1
agreement, the largest |Δ probability| over the whole vocabulary, and the batch drift (each line
alone vs in batches of 32).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from xlm_onnx import format as fmt
from xlm_onnx.batching import pad
from xlm_onnx.session import create_session


def _twin(src: Path, dst: Path, make) -> Path:
    """Copies ``src`` to ``dst`` with each per-row MatMul (``MatMulIntegerToFloat``, row-scale
    ``Mul`` and, for asymmetric rows, the zero-point ``Sub``) replaced by ``make(graph,
    float_input, weight, w_scale, output)``."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    model = onnx.load(str(src / fmt.MODEL_FILE))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    replaced, new = set(), {}
    for gemm in [n for n in graph.node if n.op_type == "MatMulIntegerToFloat"]:
        (mul,) = readers[gemm.output[0]]  # the row scale
        last = readers.get(mul.output[0], [])  # asymmetric rows: minus the zero-point term
        last = last[0] if len(last) == 1 and last[0].op_type == "Sub" and last[0].input[0] == mul.output[0] else mul
        quantize = producer[producer[gemm.input[0]].input[0]]  # q <- Reshape <- QuantizeLinear
        source = producer[quantize.input[0]].input[0]  # rows <- Reshape(source)
        new[id(gemm)] = make(graph, source, gemm.input[1], gemm.input[3], last.output[0])
        replaced.update({id(gemm), id(mul), id(last)})
    nodes = []
    for node in graph.node:
        nodes.extend(new.get(id(node), []))
        if id(node) not in replaced:
            nodes.append(node)
    outputs = {o.name for o in graph.output}
    while True:  # drop what only fed the replaced nodes
        used = {i for n in nodes for i in n.input} | outputs
        kept = [n for n in nodes if any(o in used for o in n.output)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    (dst / fmt.MODEL_DATA_FILE).unlink()
    onnx.save(model, str(dst / fmt.MODEL_FILE), save_as_external_data=True, location=fmt.MODEL_DATA_FILE,
              size_threshold=1024)
    return dst


def per_tensor_twin(per_row_dir: Path, dst: Path) -> Path:
    """``per_row_dir`` with one activation scale per batch (``DynamicQuantizeMatMul``)."""
    def make(graph, x, weight, w_scale, out):
        return [helper.make_node("DynamicQuantizeMatMul", [x, weight, w_scale], [out], domain="com.microsoft")]
    return _twin(per_row_dir, dst, make)


def float_twin(per_row_dir: Path, dst: Path) -> Path:
    """``per_row_dir`` with its int8 weights dequantized and float activations."""
    def make(graph, x, weight, w_scale, out):
        inits = {i.name: i for i in graph.initializer}
        w = numpy_helper.to_array(inits[weight]).astype(np.float32) * numpy_helper.to_array(inits[w_scale])
        name = f"{weight}.dequantized"
        if name not in inits:
            graph.initializer.append(numpy_helper.from_array(w.astype(np.float32), name))
        return [helper.make_node("MatMul", [x, name], [out])]
    return _twin(per_row_dir, dst, make)


def _probabilities(session, rows: list[list[int]], pad_id: int, vocab: int) -> np.ndarray:
    ids, attention = pad(rows, pad_id)
    feed = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: attention, fmt.TOP_K: np.array([1], np.int64),
            fmt.TARGET_IDS: np.arange(vocab, dtype=np.int64), fmt.LABEL_IDS: np.zeros(0, np.int64)}
    return session.run([fmt.TARGET_SCORES], feed)[0]


def compare(reference: Path, schemes: dict[str, Path], cases: list[list[int]], truth: list[int] | None = None,
            threads: int = 2, batch: int = 32) -> dict:
    """Per scheme, against ``reference`` on ``cases`` (masked id rows, run in batches of ``batch``):
    ``top1_agreement``, ``max_abs_score`` / ``mean_max_abs_score`` (|Δp| over the whole vocabulary,
    per mask), ``batch_drift`` (max |Δp| between each row alone and in its batch) and, with
    ``truth`` (the original id at each mask, in row-major order), ``top1_accuracy`` and
    ``top5_accuracy``. Streamed
    chunk by chunk: full-vocabulary probabilities of thousands of masks would not fit in memory."""
    manifest = fmt.read_manifest(reference)
    pad_id, vocab = manifest.pad_token_id, manifest.vocab_size
    sessions = {name: create_session(path / fmt.MODEL_FILE, "cpu", threads)
                for name, path in {"reference": reference, **schemes}.items()}
    stats = {name: {"agree": 0, "correct": 0, "top5": 0, "max": 0.0, "sum": 0.0, "drift": 0.0} for name in schemes}
    n_masks = 0
    truth = None if truth is None else np.asarray(truth)
    for start in range(0, len(cases), batch):
        chunk = cases[start:start + batch]
        ref = _probabilities(sessions["reference"], chunk, pad_id, vocab)
        labels = None if truth is None else truth[n_masks:n_masks + ref.shape[0]]
        for name in schemes:
            probs = _probabilities(sessions[name], chunk, pad_id, vocab)
            alone = np.concatenate([_probabilities(sessions[name], [row], pad_id, vocab) for row in chunk])
            delta = np.abs(probs - ref).max(axis=1)
            s = stats[name]
            s["agree"] += int(np.sum(probs.argmax(1) == ref.argmax(1)))
            if labels is not None:
                s["correct"] += int(np.sum(probs.argmax(1) == labels))
                s["top5"] += int(np.sum(np.argpartition(-probs, 5, axis=1)[:, :5] == labels[:, None]))
            s["max"], s["sum"] = max(s["max"], float(delta.max())), s["sum"] + float(delta.sum())
            s["drift"] = max(s["drift"], float(np.abs(alone - probs).max()))
        n_masks += ref.shape[0]
    out: dict = {"n_lines": len(cases), "n_masks": n_masks}
    for name, s in stats.items():
        out[name] = {"top1_agreement": s["agree"] / n_masks, "max_abs_score": s["max"],
                     "mean_max_abs_score": s["sum"] / n_masks, "batch_drift": s["drift"]}
        if truth is not None:
            out[name]["top1_accuracy"], out[name]["top5_accuracy"] = s["correct"] / n_masks, s["top5"] / n_masks
    return out


def masked_rows(tokenizer, texts: list[str], mask_id: int, max_len: int, seed: int = 0,
                mask_prob: float = 0.15) -> list[list[int]]:
    """Each text encoded (at most ``max_len`` ids, ``</s>`` kept) with ``mask_prob`` of its inner
    tokens (at least one) masked, deterministically."""
    rng = np.random.default_rng(seed)
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        ids = ids if len(ids) <= max_len else ids[:max_len - 1] + ids[-1:]
        if len(ids) < 3:
            continue
        inner = np.arange(1, len(ids) - 1)
        for pos in rng.choice(inner, max(1, round(mask_prob * len(inner))), replace=False):
            ids[pos] = mask_id
        rows.append(ids)
    return rows
