"""The command line: one module per command group; the entry point is
``compound.cli.entry:run`` (which imports ``main`` under a Ctrl-C guard).
Nothing here is imported by other packages."""

__all__: list[str] = []
