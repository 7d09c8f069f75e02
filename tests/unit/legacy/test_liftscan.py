"""What lift reads from a root filesystem, on a directory tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from compound.runtimes.vm.lift import command_for, init_script
from compound.runtimes.vm.liftscan import scan


def _root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    for d in (
        "etc/systemd/system/multi-user.target.wants",
        "lib/systemd/system",
        "etc/nginx/sites-enabled",
        "etc/nginx/sites-available",
        "etc/cron.d",
        "etc/modules-load.d",
        "var/lib/app",
        "var/lib/apt",
        "var/lib/empty/sub",
        "srv/www",
    ):
        (r / d).mkdir(parents=True)
    (r / "etc/systemd/system/app.service").write_text(
        "[Unit]\nDescription=app\n[Service]\nUser=app\nEnvironment=APP_PORT=8080 MODE=prod\n"
        "ExecStart=/usr/bin/python3 /opt/app/app.py --listen=0.0.0.0:9090\nRestart=always\n"
        "PrivateTmp=yes\n[Install]\nWantedBy=multi-user.target\n"
    )
    os.symlink(
        "/etc/systemd/system/app.service",
        r / "etc/systemd/system/multi-user.target.wants/app.service",
    )
    (r / "lib/systemd/system/cron.service").write_text("[Service]\nExecStart=/usr/sbin/cron -f\n")
    os.symlink(
        "/lib/systemd/system/cron.service",
        r / "etc/systemd/system/multi-user.target.wants/cron.service",
    )
    (r / "etc/nginx/sites-available/app").write_text(
        "server {\n  listen 80;\n  listen [::]:443 ssl;\n}\n"
    )
    os.symlink("../sites-available/app", r / "etc/nginx/sites-enabled/app")
    (r / "etc/cron.d/stamp").write_text("SHELL=/bin/sh\n* * * * * app date > /tmp/x\n")
    (r / "etc/modules-load.d/x.conf").write_text("# comment\nbr_netfilter\n")
    (r / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n")
    (r / "var/lib/app/data.json").write_text("{}")
    (r / "var/lib/apt/x").write_text("")
    (r / "srv/www/index.html").write_text("hi")
    return r


def test_scan_finds_services_ports_users_data_and_what_is_not_carried(tmp_path: Path) -> None:
    s = scan(_root(tmp_path))
    assert [u.name for u in s.units] == ["app.service"]
    app = s.units[0]
    assert app.user == "app" and app.env == {"APP_PORT": "8080", "MODE": "prod"}
    assert app.ports == [8080, 9090] and app.restart == "always"
    assert app.not_carried == ["PrivateTmp=yes"]
    assert s.skipped_units == ["cron.service"]
    assert s.users == ["bob", "app"]
    assert s.data_dirs == ["/var/lib/app", "/srv/www"]  # not apt's, not an empty tree
    assert s.cron == ["/etc/cron.d/stamp: * * * * * app date > /tmp/x"]
    assert s.kernel_modules == ["br_netfilter"]


def test_one_simple_unit_runs_as_itself_several_through_the_init(tmp_path: Path) -> None:
    s = scan(_root(tmp_path))
    assert command_for(s.units) == (
        ["/usr/bin/python3", "/opt/app/app.py", "--listen=0.0.0.0:9090"],
        "app",
        False,
    )
    two = [*s.units, s.units[0]]
    assert command_for(two)[2] is True


def test_the_init_script_is_valid_sh_and_runs_units_as_their_users(tmp_path: Path) -> None:
    s = scan(_root(tmp_path))
    text = init_script(s.units)
    assert "setpriv --reuid=app --regid=app --init-groups env APP_PORT=8080 MODE=prod" in text
    script = tmp_path / "init.sh"
    script.write_text(text)
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_nginx_ports_come_from_its_config(tmp_path: Path) -> None:
    r = _root(tmp_path)
    (r / "lib/systemd/system/nginx.service").write_text(
        "[Service]\nType=forking\nPIDFile=/run/nginx.pid\n"
        "ExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'\n"
    )
    os.symlink(
        "/lib/systemd/system/nginx.service",
        r / "etc/systemd/system/multi-user.target.wants/nginx.service",
    )
    s = scan(r)
    nginx = next(u for u in s.units if u.name == "nginx.service")
    assert nginx.ports == [80, 443] and nginx.type == "forking"
    assert nginx.exec_start == ["/usr/sbin/nginx", "-g", "daemon on; master_process on;"]
    assert "while [ ! -s /run/nginx.pid ]" in init_script(s.units)
