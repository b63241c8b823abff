"""The peers benchmark's summary (p50 over all rounds) and its markdown table.

Pure functions of the JSON that ``bench.py`` writes, so a results file can be re-rendered
(``python benchmarks/peers/report.py RESULTS.json``) and the writer is tested without the models.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

MODES = (("e2e_ms", "pipeline"), ("forward_ms", "forward"), ("encoder_ms", "encoder"))
#: Batches of texts through the encoder alone (absent from results written before it was measured).
BATCHED = "encoder_batched_ms"
#: ``--task text-classification``: end to end on each text alone, and on each batch of texts.
CLASSIFY = ("e2e_ms", "e2e_batched_ms")
BASELINE = "hf-fp32"


def _p50(samples: list[float]) -> float:
    return float(statistics.median(samples))


def summarize(data: dict) -> None:
    """Adds ``status`` and ``summary`` to each system of ``data["systems"]`` that has rounds:
    p50 per mode and length over every round's samples, each round's own p50 (drift shows
    there), load time, peak RSS, disk, versions, the system's tokenization and its notes."""
    for row in data["systems"].values():
        rounds = row.get("rounds")
        if not rounds:
            continue
        ok = [r for r in rounds if r.get("status") == "ok"]
        if not ok:
            row["status"], row["note"] = "failed", rounds[-1].get("note", "no result")
            continue
        row["status"] = "ok"
        if len(ok) < len(rounds):
            row["note"] = f"{len(rounds) - len(ok)} of {len(rounds)} rounds failed: " + \
                next(r.get("note", "") for r in rounds if r.get("status") != "ok")
        summary: dict = {}
        keys = [k for k, _ in MODES] + [BATCHED, CLASSIFY[1]]
        for key in [k for k in keys if all(k in r for r in ok)]:
            names = ok[0][key].keys()
            summary[key] = {n: _p50([t for r in ok for t in r[key][n]]) for n in names}
            summary[key.replace("_ms", "_round_p50_ms")] = {n: [_p50(r[key][n]) for r in ok] for n in names}
            summary[key.replace("_ms", "_samples")] = {n: sum(len(r[key][n]) for r in ok) for n in names}
        summary.update(load_s=_p50([r["load_s"] for r in ok]), peak_rss_mb=max(r["peak_rss_mb"] for r in ok),
                       model_bytes=ok[0].get("model_bytes"), versions=ok[0]["versions"],
                       tokenizer=ok[0]["tokenizer"], top5=ok[0].get("top5"), answers=ok[0].get("answers"),
                       notes=sorted({n for r in ok for n in r.get("notes", [])}))
        row["summary"] = summary


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _mb(n) -> str:
    return "-" if not n else f"{n / 2**20:,.0f} MB"


def _batched_table(data: dict) -> list[str]:
    """Sentences per second of the encoder alone on each batch (p50 of a batch's latency)."""
    shapes = [b["name"] for b in data.get("batched", [])]
    if not shapes:
        return []
    lines = ["", "**Encoder on batches, sentences/s** (p50 latency of one batch in ms in brackets) at "
             + " / ".join(shapes) + " (BATCHxTOKENS, every text a different one of exactly TOKENS tokens).", "",
             "| system | " + " | ".join(shapes) + " |", "|---|" + "---|" * len(shapes)]
    sizes = {b["name"]: b["batch"] for b in data["batched"]}
    for name, row in data["systems"].items():
        batched = row.get("summary", {}).get(BATCHED, {})
        cells = [f"{sizes[n] / (batched[n] / 1e3):,.1f} ({_ms(batched[n])})" if n in batched else "-" for n in shapes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _header_lines(h: dict) -> list[str]:
    flags = " ".join(h["cpu_isa"].get("flags", []))
    before = " / ".join(f"{x:.2f}" for x in h["load_avg_before"])
    after = " / ".join(f"{x:.2f}" for x in h.get("load_avg_after", h["load_avg_before"]))
    return [
        f"Measured {h['date']} on {h['cpu']} (class `{h['isa_class']}`; flags `{flags}`), {h['cores']} cores, "
        f"{h['threads']} threads per system; {h['rounds']} rounds x {h['repeat']} timed calls "
        f"(warm-up {h['warmup']}, at most {h['budget_s']:g} s per cell and round), p50 over all rounds.",
        f"Load average (1/5/15 min) before {before}, after {after}." + (f" {h['note']}" if h.get("note") else ""),
        ""]


def markdown_classify(data: dict) -> str:
    """The text-classification table: ms per call end to end, batch 1 per length and each batch of texts
    (texts/s in brackets), the ratio to the first xlm-onnx row, and each system's answer."""
    h, systems = data["header"], data["systems"]
    lengths, shapes = [str(n) for n in h["tokens"]], [b["name"] for b in data.get("batched", [])]
    sizes = {b["name"]: b["batch"] for b in data.get("batched", [])}
    cols = [f"{n} tokens" for n in lengths] + [f"batch {n}" for n in shapes]
    ref = next((r.get("summary") for n, r in systems.items() if n.startswith("xlm-onnx") and r.get("summary")), None)
    lines = _header_lines(h) + [
        "**text-classification end to end, p50 ms per call** (tokenize + model + head + softmax + best label; "
        "batch 1 at each length, then BATCHxTOKENS texts as one call, texts/s in brackets); "
        "x = the system's time over the first xlm-onnx row's (above 1: slower).", "",
        "| system | " + " | ".join(cols) + " | x xlm-onnx | load | peak RSS | disk | status |",
        "|---|" + "---|" * (len(cols) + 5)]
    for name, row in systems.items():
        s = row.get("summary")
        if not s:
            lines.append(f"| {name} | " + " | ".join("-" for _ in cols) + f" | - | - | - | - | "
                         f"{row.get('status', '?')} |")
            continue
        times = [s["e2e_ms"].get(n) for n in lengths] + [s.get(CLASSIFY[1], {}).get(n) for n in shapes]
        refs = [ref["e2e_ms"].get(n) for n in lengths] + [ref.get(CLASSIFY[1], {}).get(n) for n in shapes] \
            if ref else [None] * len(cols)
        cells = [_ms(t) for t in times[:len(lengths)]] + \
            [f"{_ms(t)} ({sizes[n] / (t / 1e3):,.1f}/s)" if t else "-" for t, n in zip(times[len(lengths):], shapes)]
        ratio = " / ".join(f"{t / r:.2f}" if t and r else "-" for t, r in zip(times, refs))
        lines.append(f"| {name} | {' | '.join(cells)} | {ratio} | {s['load_s']:.1f} s | {s['peak_rss_mb']:,.0f} MB | "
                     f"{_mb(s['model_bytes'])} | ok |")
    lines += ["", "Systems:"]
    for name, row in systems.items():
        lines.append(_system_line(name, row))
        s = row.get("summary")
        if s:
            answers = "; ".join(f"{n}: {a['label']} {a['score']}" for n, a in (s.get("answers") or {}).items()
                                if isinstance(a, dict))
            lines.append(f"  - answers (batch 1): {answers}; versions: "
                         + ", ".join(f"{k} {v}" for k, v in s["versions"].items()))
            lines += [f"  - {n}" for n in s["notes"]]
    return "\n".join(lines)


def _system_line(name: str, row: dict) -> str:
    """A system's line of a report's "Systems:" list: what it runs, and why it did not run."""
    return f"- `{name}`: {row['description']}" + (f" — **{row['status']}**: {row['note']}" if row.get("note") else "")


def markdown(data: dict) -> str:
    h, systems = data["header"], data["systems"]
    if h.get("task") == "text-classification":
        return markdown_classify(data)
    lengths = [str(n) for n in h["tokens"]]
    lines = _header_lines(h) + [
        "**p50 latency, ms, batch 1** at " + " / ".join(lengths) + " tokens (with `<s>`/`</s>`). "
        "pipeline = text -> top-5 through the system's own pipeline; forward = the model call it makes "
        "(the peers' MaskedLM graphs compute logits at every position, xlm-onnx only at the mask); "
        "encoder = the encoder alone, no LM head.",
        "",
        "| system | pipeline | forward | encoder | pipeline speed-up vs hf-fp32 | load | peak RSS | disk | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = systems.get(BASELINE, {}).get("summary", {}).get("e2e_ms", {})
    for name, row in systems.items():
        s = row.get("summary")
        if not s:
            lines.append(f"| {name} | - | - | - | - | - | - | - | {row.get('status', '?')} |")
            continue
        cells = [" / ".join(_ms(s[key].get(n)) for n in lengths) for key, _ in MODES]
        speed = " / ".join(f"{base[n] / s['e2e_ms'][n]:.2f}x" if base.get(n) else "-" for n in lengths)
        lines.append(f"| {name} | {' | '.join(cells)} | {speed} | {s['load_s']:.1f} s | "
                     f"{s['peak_rss_mb']:,.0f} MB | {_mb(s['model_bytes'])} | ok |")
    lines += _batched_table(data)
    lines += ["", "Systems:"]
    for name, row in systems.items():
        lines.append(_system_line(name, row))
        s = row.get("summary")
        if s:
            toks = ", ".join(f"{n}: {t['n_tokens']}" for n, t in s["tokenizer"].items())
            extra = "; returns token_type_ids" if any("token_type_ids" in t["keys"] for t in s["tokenizer"].values()) \
                else ""
            lines.append(f"  - its tokenizer: {toks} tokens{extra}; versions: "
                         + ", ".join(f"{k} {v}" for k, v in s["versions"].items()))
            lines += [f"  - {n}" for n in s["notes"]]
            drift = "; ".join(f"{n} tokens " + " / ".join(_ms(x) for x in s["e2e_round_p50_ms"][n]) for n in lengths)
            lines.append(f"  - pipeline p50 per round: {drift}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
