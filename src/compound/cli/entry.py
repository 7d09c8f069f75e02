"""The `compound` executable's entry point.

It imports the CLI inside a guard, so that Ctrl-C while Python is still
loading the command's modules prints one line and exits 130, as it does
once a command runs (cli/main.py), instead of a traceback.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130


def run() -> None:
    try:
        from compound.cli.main import main

        code = main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = INTERRUPTED
    sys.exit(code)
