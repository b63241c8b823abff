"""xlm-onnx runtime: torch-free fill-mask, embeddings, PLL scoring and fine-tuned classifiers for XLM in ONNX.

Only numpy, onnxruntime and sacremoses are needed. Attributes are imported lazily (PEP 562) so
``import xlm_onnx`` stays cheap and loads onnxruntime only when a model is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_getattr

__version__ = "0.2.0"

_LAZY = {
    "XLMTokenizer": "xlm_onnx.tokenization",
    "FillMask": "xlm_onnx.tasks.fill_mask",
    "default_model_dir": "xlm_onnx.model",
    "Model": "xlm_onnx.model",
    "Embedder": "xlm_onnx.tasks.embed",
    "Scorer": "xlm_onnx.tasks.score",
    "TextClassifier": "xlm_onnx.tasks.text_classification",
    "ZeroShotClassifier": "xlm_onnx.tasks.zero_shot",
    "MultipleChoice": "xlm_onnx.tasks.multiple_choice",
    "check_model": "xlm_onnx.golden",
    "cpu_info": "xlm_onnx.cpu",
    "PrecisionWarning": "xlm_onnx.errors",
    "XLMOnnxError": "xlm_onnx.errors",
    "ModelFormatError": "xlm_onnx.errors",
    "InputError": "xlm_onnx.errors",
    "InputTypeError": "xlm_onnx.errors",
    "pipeline": "xlm_onnx.pipelines",
    "Pipeline": "xlm_onnx.pipelines",
    "ModelNotFoundError": "xlm_onnx.errors",
    "resolve_model": "xlm_onnx.lookup",
    "TokenizerFileError": "xlm_onnx.errors",
    "RequestLimits": "xlm_onnx.limits",
    "LimitError": "xlm_onnx.limits",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .golden import check_model
    from .cpu import cpu_info
    from .tasks.embed import Embedder
    from .errors import (InputError, InputTypeError, ModelFormatError, ModelNotFoundError, PrecisionWarning,
                         TokenizerFileError, XLMOnnxError)
    from .pipelines import Pipeline, pipeline
    from .limits import LimitError, RequestLimits
    from .tasks.fill_mask import FillMask
    from .lookup import resolve_model
    from .model import Model, default_model_dir
    from .tasks.multiple_choice import MultipleChoice
    from .tasks.score import Scorer
    from .tasks.text_classification import TextClassifier
    from .tasks.zero_shot import ZeroShotClassifier
    from .tokenization import XLMTokenizer


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
