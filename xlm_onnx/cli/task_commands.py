"""The text tasks' commands by task name: ``xlm-onnx TASK`` and the task options of ``xlm-onnx bulk TASK``."""

from . import embed, fill_mask, score

COMMANDS = {module.TASK: module for module in (fill_mask, embed, score)}
