"""Re-draws ``docs/assets/latency-cpu.svg`` from the p50 columns of the full-size latency tables in
``benchmarks/RESULTS.md`` (the run's JSON is not kept in the repository), with the plotter of
``xlm-onnx bench --plot``::

    python benchmarks/replot_latency.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from latency_harness.report import plot  # noqa: E402

SYSTEMS = 6


def _p50(section: str, title: str) -> tuple[list[str], dict]:
    """Scenario names and ``{system: {scenario: {"p50_ms": ...}}}`` of the table after ``title``."""
    lines = [line for line in section[section.index(title):].splitlines()[1:] if line.startswith("|")]
    scenarios = [c.strip() for c in lines[0].strip("|").split("|")][1:6]
    rows = {}
    for line in lines[2:2 + SYSTEMS]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = {name: {"p50_ms": float(cells[1 + i].split("/")[0])} for i, name in enumerate(scenarios)}
    return scenarios, rows


def main() -> None:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    section = text[text.index("## Fill-mask latency, full size"):]
    scenarios, e2e = _p50(section, "**End-to-end")
    _, model = _p50(section, "**Model only")
    data = {"scenarios": [{"name": name} for name in scenarios],
            "systems": {k: {"status": "ok", "results": {"e2e": e2e[k], "model": model[k]}} for k in e2e},
            "header": {"size": "full", "cpu": "AMD EPYC (avx512-vnni), 2026-11-25", "threads": 2, "provider": "cpu"}}
    plot(data, ROOT / "docs" / "assets" / "latency-cpu.svg")


if __name__ == "__main__":
    main()
