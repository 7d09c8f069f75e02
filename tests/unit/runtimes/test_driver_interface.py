"""The Driver interface is complete: nothing outside runtimes/ (and the
advisor, placement and the bench, which reason about runtimes by design, and spec/,
which checks the runtime a file declares) asks which
runtime it has or probes a driver for a method; every optional operation
has a default that says why it is not supported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compound.errors import NotSupportedError
from compound.runtimes import Runtime
from compound.runtimes.registry import RuntimeDrivers, driver_class
from tests.unit.fakes import FakeDriver, instance

SRC = Path(__file__).resolve().parents[3] / "src" / "compound"
# spec/ validates what the file declares, `x-compound.runtime: vm` included
# (a VM cannot share the host's network namespace: a config-time error)
# benchmark/ measures one runtime against the other and prices the advisor's choice
ALLOWED = ("runtimes", "advisor", "placement", "spec", "benchmark")
BRANCH = re.compile(r"""runtime\s*[!=]=\s*["'](vm|container)["']|getattr\((driver|drv)\b""")


def test_no_runtime_branch_or_driver_probe_outside_the_runtimes() -> None:
    found = [
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.relative_to(SRC).parts[0] not in ALLOWED
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert found == []


def test_every_runtime_has_a_driver_class_named_after_it() -> None:
    assert {driver_class(r).name for r in Runtime} == {r.value for r in Runtime}
    drivers = RuntimeDrivers(client=None)  # type: ignore[arg-type]
    assert list(drivers) == list(Runtime) and len(drivers) == len(Runtime)
    with pytest.raises(KeyError):
        drivers["auto"]


def test_a_runtime_this_build_does_not_know_is_not_supported() -> None:
    assert Runtime.parse("vm") is Runtime.VM and Runtime.VM == "vm"
    with pytest.raises(NotSupportedError, match="'swarm' is not one this build"):
        Runtime.parse("swarm")


OPTIONAL = {
    "console": lambda d, i: d.console(i),
    "top": lambda d, i: d.top(i),
    "start_attached": lambda d, i: d.start_attached(i, tty=True),
    "exec_capture": lambda d, i: d.exec_capture(i, ["true"]),
    "changes": lambda d, i: d.changes(i),
    "pause": lambda d, i: d.pause(i),
    "unpause": lambda d, i: d.unpause(i),
}


@pytest.mark.parametrize("operation", sorted(OPTIONAL))
def test_an_optional_operation_a_driver_lacks_raises_with_a_reason(operation: str) -> None:
    # FakeDriver implements only the required operations
    inst = instance("web")
    with pytest.raises(NotSupportedError) as err:
        OPTIONAL[operation](FakeDriver(), inst)
    assert "container runtime" in err.value.message and err.value.message.strip()


def test_the_defaults_for_what_only_some_runtimes_add() -> None:
    inst = instance("web")
    driver = FakeDriver()
    assert driver.describe(inst) is inst
    assert driver.fingerprint(quick=True).checks == ()
