"""The guest config is shell that /init sources: values must survive any
bytes. Checked with a real POSIX shell, as the guest's busybox ash reads it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from compound.errors import VMError
from compound.runtimes.vm.guestconfig import GuestConfig, GuestMount, GuestNetwork, render

NASTY = [
    "plain",
    "two words",
    "it's",
    'double " quote',
    "$HOME and $(touch /tmp/pwned) and `id`",
    "back\\slash",
    "new\nline",
    "tab\there",
    "",
    "ünïcødé",
    "--",
    "*",
]

SHELLS = [s for s in ("busybox", "dash", "sh") if shutil.which(s)]


def source(cfg: str, script: str, tmp_path: Path, shell: str) -> bytes:
    f = tmp_path / "config"
    f.write_text(cfg)
    argv = [shell, "sh", "-c"] if shell == "busybox" else [shell, "-c"]
    return subprocess.run(
        [*argv, f'. "{f}"; {script}'], capture_output=True, check=True, timeout=10
    ).stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_argv_round_trips_through_eval_set(tmp_path: Path, shell: str) -> None:
    cfg = render(GuestConfig(argv=tuple(NASTY)))
    out = source(cfg, 'eval "set -- $COMPOUND_ARGV"; printf "%s\\0" "$@"', tmp_path, shell)
    assert out.decode().split("\0")[:-1] == NASTY
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_env_round_trips_as_words(tmp_path: Path, shell: str) -> None:
    env = {f"V{i}": v for i, v in enumerate(NASTY)}
    env["EQ"] = "a=b=c"
    cfg = render(GuestConfig(argv=("true",), env=env))
    out = source(cfg, 'eval "env -i $COMPOUND_ENV /usr/bin/env -0"', tmp_path, shell)
    got = dict(item.split("=", 1) for item in out.decode().split("\0")[:-1])
    assert got == env


def test_mounts_network_and_files(tmp_path: Path) -> None:
    cfg = GuestConfig(
        argv=("httpd",),
        hostname="web",
        network=GuestNetwork(
            "10.0.2.15/24", "10.0.2.2", ("10.0.2.3",), ("svc.local",), ("ndots:0",)
        ),
        mounts=(GuestMount("vol0", "/srv/data"), GuestMount("vol1", "/etc/conf", True)),
        tmpfs=(("/run", "size=1m"),),
        extra_hosts={"db": "10.9.9.9", "multi": "10.9.9.7,10.9.9.8"},
        stop_signal="SIGQUIT",
    )
    out = (
        source(
            render(cfg),
            'printf "%s|" "$COMPOUND_MOUNTS" "$COMPOUND_RESOLV_CONF" "$COMPOUND_HOSTS" '
            '"$COMPOUND_IP" "$COMPOUND_GATEWAY" "$COMPOUND_STOP_SIGNAL" "$COMPOUND_TMPFS"',
            tmp_path,
            SHELLS[0],
        )
        .decode()
        .split("|")
    )
    assert out[0] == "vol0\t/srv/data\trw\nvol1\t/etc/conf\tro"
    assert out[1] == "nameserver 10.0.2.3\nsearch svc.local\noptions ndots:0"
    assert "10.0.2.15\tweb" in out[2] and "10.9.9.9\tdb" in out[2]
    # several addresses for one name: one line each
    assert "10.9.9.7\tmulti" in out[2] and "10.9.9.8\tmulti" in out[2]
    assert out[3:7] == ["10.0.2.15/24", "10.0.2.2", "QUIT", "/run\tsize=1m"]


@pytest.mark.parametrize(
    "cfg",
    [
        GuestConfig(argv=("x",), working_dir="relative"),
        GuestConfig(argv=("x",), mounts=(GuestMount("bad tag", "/x"),)),
        GuestConfig(argv=("x",), mounts=(GuestMount("ok", "/with\ttab"),)),
        GuestConfig(argv=("x",), env={"A=B": "c"}),
    ],
)
def test_invalid_values_are_refused(cfg: GuestConfig) -> None:
    with pytest.raises(VMError):
        render(cfg)
