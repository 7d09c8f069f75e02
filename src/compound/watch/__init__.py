"""`compound watch`: a service's develop.watch rules applied as files change.

rules.py    which rule claims a changed path (ignore/include, .dockerignore)
archive.py  the tar of one batch of changed files
loop.py     the loop: watchfiles batches → copy in, remove, exec, restart or rebuild

Its public face is the loop (``Watcher``, ``describe``); the CLI imports it
from ``compound.watch.loop`` when the command runs, so that ``--help`` does not
pay for watchfiles.
"""

__all__ = ["archive", "loop", "rules"]
