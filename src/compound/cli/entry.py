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
    argv = sys.argv[1:]
    if argv == ["--version"]:  # nothing to import for this answer
        sys.stdout.write(version_string() + "\n")
        sys.exit(0)
    try:
        code = _from_cache(argv) if _cacheable(argv) else None
        if code is None:
            from compound.cli.main import main

            code = main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = INTERRUPTED
    sys.exit(code)


def version_string() -> str:
    from compound import __version__

    return f"compound version {__version__}"


def _cacheable(argv: list[str]) -> bool:
    # a cheap first look, before importing even the cache's standard modules
    return "config" in argv or argv in (["--help"], ["-h"])


def _from_cache(argv: list[str]) -> int | None:
    """`compound config` and `compound --help`: the stored answer when nothing
    it depends on changed (cli/config_cache.py); otherwise run the command,
    keeping its answer. None: not cacheable (the caller runs the command)."""
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
    if code == 0 and not err.kept.getvalue() and (reads or argv in (["--help"], ["-h"])):
        config_cache.store(key, reads, out.kept.getvalue())
    return code
