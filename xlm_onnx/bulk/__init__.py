"""``xlm-onnx bulk TASK`` (the ``[ray]`` extra): input parts and output files (``parts``) and the
command (``command``, which imports Ray only when it runs). The Ray Data callables it runs are
:mod:`xlm_onnx.ray`'s."""
