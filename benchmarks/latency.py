"""Latency benchmark: xlm-onnx vs transformers/PyTorch (eager fp32, dynamic int8) and optimum.

From a source checkout (the [export] and [bench] extras); see ``python benchmarks/latency.py --help``. Examples::

    python benchmarks/latency.py --json bench_out/cpu.json --plot bench_out/cpu.png
    python benchmarks/latency.py --size tiny --systems onnx-fp32 --scenarios 1x16 --repeat 2
    python benchmarks/latency.py --provider cuda --json $OUT/gpu.json      # on a GPU machine
"""

import sys

from latency_harness import main

if __name__ == "__main__":
    sys.exit(main())
