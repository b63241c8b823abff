"""``python -m xlm_onnx``: the same as the ``xlm-onnx`` command."""

import sys

from .cli.main import main

sys.exit(main())
