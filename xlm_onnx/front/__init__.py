"""What the front ends (``cli``, ``serve``, ``bulk``) share besides the task registry: command-line
options built from a task's :class:`~xlm_onnx.tasks.params.Params` and the options every command
takes (``arguments``). The front ends import it and the tasks; they do not import each other,
except that the ``xlm-onnx`` parser adds the ``serve`` and ``bulk`` commands."""
