"""Options several commands share, defined once: the model, the runtime, the text options."""

from __future__ import annotations

import argparse

MODEL_WHERE = "directory, Hugging Face cache folder (models--org--name) or cached model id (org/name)"


def add_model(parser: argparse.ArgumentParser, *, flag: bool = True, required: bool = False,
              where: str = MODEL_WHERE) -> None:
    """``--model MODEL`` (``flag``) or a ``MODEL`` argument, and ``--revision``."""
    if flag:
        parser.add_argument("--model", metavar="MODEL", help=f"model {where} (default: the embedded demo model)")
    else:
        parser.add_argument("model", metavar="MODEL", nargs=None if required else "?",
                            help=f"model {where}" + ("" if required else " (default: the embedded demo model)"))
    parser.add_argument("--revision", help="branch, tag or commit of a cached model (default: main); never downloads")


def add_runtime(parser: argparse.ArgumentParser) -> None:
    """``--provider`` and ``--threads`` (:meth:`Model.load <xlm_onnx.model.Model.load>`)."""
    parser.add_argument("--provider", default="cpu", help="cpu, cuda or tensorrt")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: ORT's choice)")


def add_text(parser: argparse.ArgumentParser) -> None:
    """``--lang`` and ``--truncation``, which every task takes."""
    parser.add_argument("--lang", help="language code, for models with language embeddings")
    parser.add_argument("--truncation", action="store_true", help="cut texts longer than the model maximum")


def text_options(args: argparse.Namespace) -> dict:
    """The API's ``lang`` and ``truncation`` from :func:`add_text`'s options."""
    return {"lang": args.lang, "truncation": args.truncation}
