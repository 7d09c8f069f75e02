"""Entrypoint/command/env/workdir/user merging follows the Docker Engine."""

from __future__ import annotations

import pytest

from compound.errors import ServiceError
from compound.runtimes.vm.imageconfig import (
    DEFAULT_PATH,
    ImageConfig,
    merge_argv,
    merge_env,
    merge_service,
)
from compound.spec.model import Service


@pytest.mark.parametrize(
    ("img_ep", "img_cmd", "ep", "cmd", "want"),
    [
        (None, ["sh"], None, None, ("sh",)),
        (["/entry"], ["run"], None, None, ("/entry", "run")),
        (["/entry"], ["run"], None, ["other"], ("/entry", "other")),
        # a service entrypoint drops the image CMD
        (["/entry"], ["run"], ["/mine"], None, ("/mine",)),
        (["/entry"], ["run"], ["/mine"], ["x"], ("/mine", "x")),
        # an empty entrypoint clears the image's and keeps its CMD
        (["/entry"], ["run"], [], None, ("run",)),
        (["/entry"], ["run"], [], ["x"], ("x",)),
        (None, None, None, None, ()),
    ],
)
def test_argv(
    img_ep: list[str] | None,
    img_cmd: list[str] | None,
    ep: list[str] | None,
    cmd: list[str] | None,
    want: tuple[str, ...],
) -> None:
    assert merge_argv(img_ep, img_cmd, ep, cmd) == want


def test_env_service_overrides_image_and_path_defaults() -> None:
    env = merge_env(["A=1", "B=2=3", "JUNK"], {"A": "x", "C": None, "D": ""})
    assert env == {"A": "x", "B": "2=3", "D": "", "PATH": DEFAULT_PATH}
    assert merge_env(["PATH=/mine"], {})["PATH"] == "/mine"


def test_from_inspect_and_merge_service() -> None:
    img = ImageConfig.from_inspect(
        {
            "Config": {
                "Entrypoint": None,
                "Cmd": ["httpd", "-f"],
                "Env": ["PATH=/bin"],
                "WorkingDir": "/srv",
                "User": "www",
                "ExposedPorts": {"80/tcp": {}},
                "StopSignal": "SIGQUIT",
            }
        }
    )
    assert img.exposed_ports == ("80/tcp",)
    p = merge_service(img, Service(name="web", environment={"X": "1"}))
    assert p.argv == ("httpd", "-f")
    assert p.env == {"PATH": "/bin", "X": "1"}
    assert (p.working_dir, p.user, p.stop_signal) == ("/srv", "www", "SIGQUIT")
    p = merge_service(img, Service(name="web", user="0:0", working_dir="/x", stop_signal="SIGINT"))
    assert (p.working_dir, p.user, p.stop_signal) == ("/x", "0:0", "SIGINT")


def test_no_command_is_a_service_error() -> None:
    with pytest.raises(ServiceError, match="no command"):
        merge_service(ImageConfig(), Service(name="empty"))
