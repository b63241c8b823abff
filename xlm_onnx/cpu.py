"""The CPU at hand: its model and the ISA flags that select onnxruntime's int8 kernels.

ORT's MLAS library picks its u8s8 GEMM kernel from CPUID. Which kernel runs decides whether
full-range int8 weights are exact (see :data:`xlm_onnx.format.INT8_SATURATION_SAFE_MAX`):

============  ===================================  =====================================
class         u8s8 kernel                          full-range int8 weights (|q| > 64)
============  ===================================  =====================================
amx           AMX tiles (int32 accumulators)       exact
avx512-vnni   ``vpdpbusd`` (int32)                 exact
avx-vnni      ``vpdpbusd`` VEX form (int32)        exact
avx512        ``vpmaddubsw`` (saturating int16)    **saturate**
avx2          ``vpmaddubsw`` (saturating int16)    **saturate**
sse           zero-extend + ``pmaddwd`` (int32)    exact (Linux/macOS kernel)
arm64         ``udot``/``smmla``/widening NEON     exact
============  ===================================  =====================================

Flags are read from ``/proc/cpuinfo`` (Linux) or ``sysctl`` (macOS) — no dependency. An emulator
or container can hide the real CPU from them (qemu-user passes the host's ``/proc/cpuinfo``
through), so ``XLM_ONNX_CPU_FLAGS`` (space-separated flags) overrides what is read.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Flags that select ORT kernels (x86 names as Linux spells them; macOS's are mapped to these).
ISA_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve")
#: Classes whose u8s8 kernel saturates full-range int8 weights (see the table above).
SATURATING_CLASSES = ("avx512", "avx2")
FLAGS_ENV = "XLM_ONNX_CPU_FLAGS"
_MACOS_NAMES = {"AVX1.0": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c", "AVX512F": "avx512f",
                "AVX512BW": "avx512bw", "AVX512VNNI": "avx512_vnni"}


@dataclass(frozen=True)
class CpuInfo:
    """What this machine's CPU is, as far as xlm-onnx's kernels care.

    Attributes:
        model: Marketing name (``AMD EPYC 7B13``), or the architecture when unknown.
        machine: ``platform.machine()`` (``x86_64``, ``aarch64``, ``arm64``, ...).
        flags: The :data:`ISA_FLAGS` this CPU has, in that order.
        source: Where the flags came from (``/proc/cpuinfo``, ``sysctl``, the env override, none).
    """

    model: str
    machine: str
    flags: tuple[str, ...]
    source: str

    @property
    def isa_class(self) -> str:
        """The kernel class of the table above, or ``unknown``."""
        has = set(self.flags)
        if self.machine.lower() in ("aarch64", "arm64"):
            return "arm64"
        if self.machine.lower() not in ("x86_64", "amd64", "i386", "i686", "x86") or not has:
            return "unknown"
        for name, flag in (("amx", "amx_int8"), ("avx512-vnni", "avx512_vnni"), ("avx-vnni", "avx_vnni"),
                           ("avx512", "avx512bw"), ("avx2", "avx2")):
            if flag in has:
                return name
        return "sse"

    @property
    def int8_saturates(self) -> bool | None:
        """Whether ORT's u8s8 kernel here saturates full-range weights (``None``: cannot tell)."""
        cls = self.isa_class
        return None if cls == "unknown" else cls in SATURATING_CLASSES

    def as_dict(self) -> dict:
        """For benchmark headers and ``golden.json``."""
        return {"model": self.model, "machine": self.machine, "isa_class": self.isa_class,
                "flags": list(self.flags), "flags_source": self.source}


def _linux() -> tuple[str, set[str]]:
    model, flags = "", set()
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model Name", "Hardware") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags


def _macos() -> tuple[str, set[str]]:
    def sysctl(name: str) -> str:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""

    words = f"{sysctl('machdep.cpu.features')} {sysctl('machdep.cpu.leaf7_features')}".split()
    flags = {_MACOS_NAMES[w] for w in words if w in _MACOS_NAMES}
    if platform.machine() == "arm64":  # every Apple silicon core has NEON dot products
        flags |= {"asimd", "asimddp"}
    return sysctl("machdep.cpu.brand_string"), flags


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """Reads the CPU once per process (cached)."""
    machine = platform.machine()
    model, flags, source = "", set(), "none"
    try:
        if Path("/proc/cpuinfo").is_file():
            (model, flags), source = _linux(), "/proc/cpuinfo"
        elif platform.system() == "Darwin":
            (model, flags), source = _macos(), "sysctl"
    except (OSError, subprocess.SubprocessError):
        pass
    override = os.environ.get(FLAGS_ENV)
    if override is not None:
        flags, source = set(override.split()), FLAGS_ENV
    return CpuInfo(model or platform.processor() or machine, machine,
                   tuple(f for f in ISA_FLAGS if f in flags), source)


def int8_saturation_message(weight_max: int | None, info: CpuInfo) -> str | None:
    """Why an int8 model with weights up to ``weight_max`` is not exact here, or ``None``.

    ``None`` for non-int8 models (``weight_max`` None), saturation-safe weights, or CPUs whose
    kernels are exact or unknown.
    """
    from .format import INT8_SATURATION_SAFE_MAX

    if weight_max is None or weight_max <= INT8_SATURATION_SAFE_MAX or not info.int8_saturates:
        return None
    return (f"int8 weights use the full range (|q| <= {weight_max}), which onnxruntime's u8s8 kernel on this "
            f"CPU ({info.model}, class {info.isa_class}: vpmaddubsw, no VNNI) saturates, so scores drift from the "
            f"export's; re-export with `xlm-onnx export CHECKPOINT OUT --precision int8` (7-bit weights, "
            f"the default) and run `xlm-onnx check OUT` here")
