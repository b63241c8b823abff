"""Recipes that build artefacts shipped with xlm-onnx; run from the repository root, not installed."""
