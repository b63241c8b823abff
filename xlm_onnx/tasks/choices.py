"""The built-in tasks' option values, in a module light enough for the command line's parsers
(importing a task module loads numpy and the model stack, ~0.5 s; argparse needs the choices
before any of that)."""

#: ``Embedder`` pooling of the last hidden state (:func:`xlm_onnx.tasks.embed.pool`).
POOLINGS = ("mean", "cls")
#: ``Scorer`` PLL variants: Salazar et al.'s, and Kauf & Ivanova's within-word left-to-right.
METRICS = ("original", "word_l2r")
