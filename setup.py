"""Package discovery, the one part of the build that ``pyproject.toml`` cannot express.

Everything else is in ``pyproject.toml``. The runtime's packages are found under ``xlm_onnx/``
(namespace-style, so the data-only ``xlm_onnx/default_model/`` ships as package data); the
exporter's are found under ``export/`` and installed as ``xlm_onnx_export`` (pyproject's
package-dir table maps the folder), which ``[tool.setuptools.packages.find]`` cannot do because
it names a package after its folder. A new subpackage on either side needs no edit here.
"""

from setuptools import find_namespace_packages, find_packages, setup

RUNTIME = [p for p in find_namespace_packages(include=["xlm_onnx", "xlm_onnx.*"]) if "__pycache__" not in p]
EXPORTER = ["xlm_onnx_export", *(f"xlm_onnx_export.{p}" for p in find_packages("export"))]

setup(packages=RUNTIME + EXPORTER)
