"""The one function that builds an onnxruntime ``InferenceSession`` for xlm-onnx models."""

from __future__ import annotations

import os
from typing import Sequence, Union

from .inputs import one_of, positive_int
from .errors import ModelFormatError

ProviderSpec = Union[str, Sequence[Union[str, tuple]]]

#: Short provider names -> ORT provider lists (fallbacks last).
PROVIDER_ALIASES = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": [
        ("TensorrtExecutionProvider", {"trt_fp16_enable": True, "trt_engine_cache_enable": True}),
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ],
}

_LEVELS = ("disable", "basic", "extended", "all")


def resolve_providers(provider: ProviderSpec) -> list:
    """Turns ``"cpu"``/``"cuda"``/``"tensorrt"`` or an explicit ORT list into an ORT provider list.

    Raises:
        ValueError: Unknown alias, or the first requested provider is not in this onnxruntime build.
    """
    import onnxruntime as ort

    if isinstance(provider, str):
        if provider not in PROVIDER_ALIASES:
            raise ValueError(f"provider {provider!r} is unknown; use one of {sorted(PROVIDER_ALIASES)} or an ORT provider list")
        providers = list(PROVIDER_ALIASES[provider])
    elif isinstance(provider, (list, tuple)) and provider:
        providers = list(provider)
    else:
        raise TypeError(f"provider must be a str or a non-empty list of ORT providers, not {type(provider).__name__}")
    first = providers[0] if isinstance(providers[0], str) else providers[0][0]
    available = ort.get_available_providers()
    if first not in available:
        raise ValueError(
            f"{first} is not available in this onnxruntime build (available: {', '.join(available)});"
            " for GPUs install the [gpu] extra (onnxruntime-gpu)"
        )
    return [p for p in providers if (p if isinstance(p, str) else p[0]) in available]


def create_session(
    model_path: str | os.PathLike,
    provider: ProviderSpec = "cpu",
    threads: int | None = None,
    optimization_level: str = "all",
    enable_mem_arena: bool = True,
    spinning: bool = True,
):
    """Builds an ``InferenceSession``: providers, threads, graph optimisation level, memory arena.

    Args:
        model_path: The ``model.onnx`` file (external data beside it).
        provider: ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or an explicit ORT provider list.
        threads: Intra-op threads; ``None`` lets ORT use one per physical core.
        optimization_level: One of ``disable``, ``basic``, ``extended``, ``all``.
        enable_mem_arena: Keep ORT's CPU arena (faster; turn off to return memory between calls).
        spinning: Let idle intra-op threads spin-wait for work (ORT's default; lowest latency on
            otherwise idle cores). Turn off where other work shares the cores (a server's event
            loop, several processes): measured on AVX2, int8 1x16 with one busy process beside
            it took 141 ms spinning and 82 ms without.

    Raises:
        ModelFormatError: The file is missing or is not a loadable ONNX model.
    """
    import onnxruntime as ort

    one_of("optimization_level", optimization_level, _LEVELS)
    positive_int("threads", threads, allow_none=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
                                     "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}[optimization_level]
    )
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = enable_mem_arena
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    providers = resolve_providers(provider)
    if not os.path.isfile(model_path):
        raise ModelFormatError(f"{model_path}: missing")
    try:
        return ort.InferenceSession(os.fspath(model_path), sess_options=options, providers=providers)
    except Exception as exc:  # ORT raises several private exception types for a bad file
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFormatError(f"{model_path}: cannot be loaded by onnxruntime: {message}") from None
