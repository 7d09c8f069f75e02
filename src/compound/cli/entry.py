"""The `compound` executable's entry point.

It imports the CLI inside a guard, so that Ctrl-C while Python is still
loading the command's modules prints one line and exits 130, as it does
once a command runs (cli/main.py), instead of a traceback.
"""

from __future__ import annotations

import os
import sys

INTERRUPTED = 130


def run() -> None:
    # pydantic looks for plugins in every installed distribution's metadata before
    # its first model (~30 ms a start); compound uses none
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        code = _config_from_cache(sys.argv[1:])
        if code is None:
            from compound.cli.main import main

            code = main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = INTERRUPTED
    sys.exit(code)


def _config_from_cache(argv: list[str]) -> int | None:
    """`compound config`: the stored answer when nothing it read changed
    (cli/config_cache.py); otherwise run it, keeping the answer. None: not
    a `config` (the caller runs the command)."""
    from compound.cli import config_cache

    key = config_cache.key_for(argv)
    if key is None:
        return None
    if config_cache.replay(key):
        return 0
    from compound.cli.main import main
    from compound.spec.files import recording_reads

    out, err = config_cache.Tee(sys.stdout), config_cache.Tee(sys.stderr)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        with recording_reads() as reads:
            code = main(argv)
    finally:
        sys.stdout, sys.stderr = saved
    if code == 0 and not err.kept.getvalue() and reads:
        config_cache.store(key, reads, out.kept.getvalue())
    return code
