"""The ``rkm`` command's top level, without torch: its parser class, description, commands and version.

``rkm --version`` and ``rkm --help`` are answered from here alone (:func:`rkm.__main__.run`), so
they print at once instead of after the seconds torch takes to import; :func:`top_parser` is
also the top of the full parser (:func:`rkm.app._cli.build_parser`), so both say the same.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .. import __version__

DESCRIPTION = "Train, sample and evaluate Restricted Kirchhoff Machines (resistor-network RBMs)."

HELP = {
    "train": "train a model into a run folder",
    "generate": "generate samples from noise with a trained model",
    "reconstruct": "reconstruct test data with a trained model",
    "evaluate": "reconstruction error and sample-quality metrics",
    "plot": "redraw a run's figures",
    "datasets": "list the datasets",
    "energy": "time, power and energy per operation: the circuit against a digital RBM",
    "sweep": "train every combination of a grid of settings over several seeds (Dask)",
    "convert-pyrkm": "convert pyrkm's pickled save points into rkm save points",
}
"""Every command and its one-line help, in the order ``rkm --help`` lists them."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line ``rkm: error: ...`` (exit status 2), like every other."""

    def error(self, message: str) -> NoReturn:
        missing = re.fullmatch(r"argument (-[^\s:/]+)(?:/\S+)?: expected one argument", message)
        if missing:  # argparse reads a value that starts with '-' (-1e300,1) as an option
            flag = missing.group(1)
            message += f"; a value that starts with '-' is written {flag}=VALUE"
        self.exit(2, f"rkm: error: {message} (see {self.prog} --help)\n")


def folder(example: str) -> Callable[[str], Path]:
    """The argparse type of a folder argument: a path that is not empty (an empty one would be the current
    folder, and rkm would write there); ``example`` shows one in the error."""

    def parse(text: str) -> Path:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"is empty; name a folder, e.g. {example}")
        return Path(text)

    return parse


def top_parser() -> tuple[Parser, argparse._SubParsersAction]:
    """The top-level parser (``--version``, ``-v``) and its sub-parsers, with no command added yet."""
    parser = Parser(prog="rkm", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"rkm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser, parser.add_subparsers(dest="command", metavar="COMMAND", required=True)


def answer_without_torch(argv: list[str]) -> int | None:
    """Answer ``rkm --version`` and ``rkm --help`` (no command named) here; None for every other command line."""
    before_command = []
    for word in argv:
        if word in HELP:
            return None
        before_command.append(word)
    if not {"--version", "-h", "--help"} & set(before_command):
        return None
    parser, sub = top_parser()
    for name, summary in HELP.items():
        sub.add_parser(name, help=summary)
    try:
        parser.parse_args(argv)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0
    return 0
