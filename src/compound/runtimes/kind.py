"""Which runtime an instance runs on, as a typed value.

A ``StrEnum``: it equals, hashes and serialises as its string ("container",
"vm"), so engine labels, history records and JSON output are unchanged,
while code that names a runtime names a member mypy can check.
"""

from __future__ import annotations

from enum import StrEnum

from compound.errors import NotSupportedError


class Runtime(StrEnum):
    CONTAINER = "container"
    VM = "vm"

    @classmethod
    def parse(cls, value: str) -> Runtime:
        """The runtime a label or a record names; a runtime this build does
        not know is not supported (an instance made by a newer compound)."""
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise NotSupportedError(
                f"runtime {value!r} is not one this build can manage",
                hint=f"known runtimes: {known}",
            ) from None
