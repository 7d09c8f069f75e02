"""The command line: one module per command group; the entry point is
``compound.cli.main:run``. Nothing here is imported by other packages."""

__all__: list[str] = []
