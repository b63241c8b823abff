"""The tasks over a loaded :class:`~xlm_onnx.model.Model`: fill-mask (``fill_mask``, its inputs in
``fill_mask_inputs``, whole-word targets in ``whole_word``), sentence embeddings (``embed``) and
pseudo-log-likelihood scoring (``score``)."""
