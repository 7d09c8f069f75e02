"""Driver conformance: what every runtime's driver must do, the same way.

One set of tests, run against every driver in ``runtimes/registry.py``
(Nomad's ``testutils`` idea): a driver added later is added to ``DRIVERS``
and must pass them too. The whole life of one instance is one test per
driver, so the VM side costs one boot.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from compound.engine.resources import ensure_network
from compound.errors import EngineError, NotSupportedError
from compound.runtimes import Driver, Instance, Runtime
from compound.runtimes.container import ContainerDriver
from compound.runtimes.vm.driver import VMDriver
from compound.spec.model import Project, Service, XCompound

pytestmark = pytest.mark.integration

# every runtime, and how to make its driver writing exec output to ``out``
DRIVERS: dict[Runtime, Callable[[docker.DockerClient, io.BytesIO], Driver]] = {
    Runtime.CONTAINER: lambda engine, out: ContainerDriver(engine, stdout=out, stderr=out),
    Runtime.VM: lambda engine, out: VMDriver(engine, stdout=out, stderr=out),
}

# stops on SIGTERM with its own code, so "stop with grace" is told from a kill
APP = "trap 'exit 7' TERM; echo conformance-ready; while :; do sleep 1; done"


def test_every_runtime_has_a_conformance_driver() -> None:
    assert set(DRIVERS) == set(Runtime)


def _service(runtime: Runtime, image: str) -> Service:
    return Service(
        name="subject",
        image=image,
        command=("sh", "-c", APP),
        environment={"CONFORMANCE": "yes"},
        x_compound=XCompound(runtime=runtime.value),
    )


def _until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)


def _setup(
    runtime: Runtime, engine: docker.DockerClient, image: str, make_project: Any
) -> tuple[Driver, io.BytesIO, Project, Service]:
    out = io.BytesIO()
    driver = DRIVERS[runtime](engine, out)
    svc = _service(runtime, image)
    project: Project = make_project(svc)
    for net in project.networks.values():
        ensure_network(engine, project, net)
    return driver, out, project, svc


@pytest.mark.timeout(300)
@pytest.mark.parametrize("runtime", list(Runtime), ids=str)
def test_an_instance_lives_and_dies_the_same_on_every_runtime(
    runtime: Runtime, engine: docker.DockerClient, busybox_image: str, make_project: Any
) -> None:
    driver, out, project, svc = _setup(runtime, engine, busybox_image, make_project)
    assert driver.name == runtime

    image_id = driver.prepare(project, svc)
    assert image_id.startswith("sha256:")
    inst = driver.create(project, svc, 1, svc.config_hash())
    assert (inst.runtime, inst.service, inst.number) == (runtime, "subject", 1)
    assert inst.status == "created" and not inst.running

    driver.start(inst)
    assert driver.inspect(inst.id).running
    _until(
        "the app's first line in the logs",
        lambda: any("conformance-ready" in line.text for line in driver.logs(inst)),
        timeout=240,  # a VM boots first (TCG on this host)
    )
    described = driver.describe(driver.inspect(inst.id))
    assert described.id == inst.id and described.running

    # exec wired to our stdio, and captured: in the instance, as the service
    assert driver.exec(inst, ["sh", "-c", 'echo "conformance=$CONFORMANCE"; exit 3']) == 3
    assert b"conformance=yes\n" in out.getvalue()
    assert driver.exec_capture(inst, ["sh", "-c", "echo hi; echo oops >&2"]) == (
        0,
        b"hi\n",
        b"oops\n",
    )

    stats = driver.stats(inst)
    assert stats["memory_usage"] > 0 and "cpu_percent" in stats

    # stop with a grace period: SIGTERM reaches the app, which exits with its code
    started = time.monotonic()
    driver.stop(inst, grace=30)
    assert driver.wait(inst, timeout=30) == 7
    assert time.monotonic() - started < 30  # not killed at the end of the grace
    stopped = driver.inspect(inst.id)
    assert stopped.status == "exited" and stopped.exit_code == 7

    driver.remove(stopped, volumes=True)
    with pytest.raises(EngineError):
        driver.inspect(inst.id)


# optional operations: (capability, call) -- without the capability the call
# raises NotSupportedError saying why; with it, the call answers
OPTIONAL: dict[str, Callable[[Driver, Instance], object]] = {
    "console": lambda d, i: d.console(i),
    "top": lambda d, i: d.top(i),
    "terminal": lambda d, i: d.start_attached(i, tty=True),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("runtime", list(Runtime), ids=str)
def test_an_operation_a_runtime_lacks_says_why(
    runtime: Runtime, engine: docker.DockerClient, busybox_image: str, make_project: Any
) -> None:
    driver, _, project, svc = _setup(runtime, engine, busybox_image, make_project)
    driver.prepare(project, svc)
    inst = driver.create(project, svc, 1, svc.config_hash())  # never started: no boot
    lacking = [name for name in OPTIONAL if not getattr(driver.capabilities, name)]
    assert lacking, f"the {runtime} driver claims every optional operation"
    for name in lacking:
        with pytest.raises(NotSupportedError) as err:
            OPTIONAL[name](driver, inst)
        assert err.value.message.strip(), name
        assert inst.name in err.value.message or runtime.value in err.value.message
    driver.remove(inst, volumes=True)


@pytest.mark.parametrize("runtime", list(Runtime), ids=str)
def test_a_quick_fingerprint_names_its_checks_and_boots_nothing(
    runtime: Runtime, engine: docker.DockerClient
) -> None:
    driver = DRIVERS[runtime](engine, io.BytesIO())
    started = time.monotonic()
    fp = driver.fingerprint(quick=True)
    assert fp.runtime == runtime
    assert [c.name for c in fp.checks] == [c.name for c in type(driver).host_checks()]
    assert fp.checks, f"the {runtime} driver checks nothing on the host"
    assert all(c.status in ("ok", "warn", "fail", "skip") and c.detail for c in fp.checks)
    assert time.monotonic() - started < 30
