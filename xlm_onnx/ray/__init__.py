"""``xlm_onnx.ray``: the Ray Data callables, under the name they were published with (the code
lives in :mod:`xlm_onnx.bulk.callables`)."""

from ..bulk.callables import (ERROR_COLUMN, TASKS, BulkTask, EmbedBatch, FillMaskBatch, ScoreBatch, actor_threads,
                              row_message)

__all__ = ["ERROR_COLUMN", "TASKS", "BulkTask", "EmbedBatch", "FillMaskBatch", "ScoreBatch", "actor_threads",
           "row_message"]
