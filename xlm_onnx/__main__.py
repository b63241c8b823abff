"""``python -m xlm_onnx``: the same as the ``xlm-onnx`` command."""

import sys

from .cli import main

sys.exit(main())
