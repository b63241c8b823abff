"""Bulk jobs on Ray (the ``[ray]`` extra): the ``map_batches`` callables (``callables``, also
importable as ``xlm_onnx.ray``), input parts and output files (``parts``) and the ``xlm-onnx bulk``
command (``command``, which imports Ray only when it runs)."""
