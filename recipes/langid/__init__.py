"""The embedded language identifier: data (``data``), training (``train``), held-out evaluation beside
lingua and py3langid (``evaluate``) and its model card (``model_card``). Run from the repository
root (``python -m recipes.langid.train``); not in the wheel."""
