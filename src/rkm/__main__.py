"""``python -m rkm`` and the ``rkm`` console script.

:func:`run` imports the command line (and with it torch) only after it is running, so a
Ctrl-C during that slow start-up ends with exit status 130 and no traceback; ``rkm --version``
and ``rkm --help`` are answered without importing torch at all.
"""

import sys


def run() -> int:
    """Run the ``rkm`` command with ``sys.argv``; returns its exit status."""
    try:
        from .app._commands import answer_without_torch

        answered = answer_without_torch(sys.argv[1:])
        if answered is not None:
            return answered
        from .app._cli import main
    except KeyboardInterrupt:
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
