"""How the embedded demo model is made: corpus → BPE vocabulary + training → export → model card.

Not part of the wheel (the exporter does not need it). Run from the repository root with the
``[export]`` extra installed::

    python -m recipes.demo_model.corpus --download
    python -m recipes.demo_model.train --out .cache/demo_ckpt      # config: train_config.json
    python -m recipes.demo_model.model_card --checkpoint .cache/demo_ckpt --accuracy .cache/accuracy.json \\
        --model-dir xlm_onnx/default_model

``xlm_onnx/default_model/MODEL_CARD.md`` lists the whole sequence with the export steps.
"""
