"""compound: containers and virtual machines from one Compose file."""

__version__ = "0.1.0"

__all__ = ["__version__"]
