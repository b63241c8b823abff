"""``xlm_onnx.ray``: the Ray Data callables (``[ray]`` extra; :mod:`xlm_onnx.ray.callables`), which
``xlm-onnx bulk`` runs and a Ray Data pipeline may use as they are."""

from .callables import (ERROR_COLUMN, TASKS, BulkTask, EmbedBatch, FillMaskBatch, QuestionAnsweringBatch, ScoreBatch,
                        TokenClassificationBatch, actor_threads, row_message)

__all__ = ["ERROR_COLUMN", "TASKS", "BulkTask", "EmbedBatch", "FillMaskBatch", "QuestionAnsweringBatch", "ScoreBatch",
           "TokenClassificationBatch", "actor_threads", "row_message"]
