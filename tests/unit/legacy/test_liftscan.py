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


def _enable(r: Path, unit: str, text: str, target: str) -> None:
    (r / "lib/systemd/system" / unit).write_text(text)
    wants = r / "etc/systemd/system" / target
    wants.mkdir(parents=True, exist_ok=True)
    os.symlink(f"/lib/systemd/system/{unit}", wants / unit)


def test_timers_and_cron_lines_become_schedules_with_a_host_suggestion(tmp_path: Path) -> None:
    r = _root(tmp_path)
    (r / "lib/systemd/system/backup.service").write_text(
        "[Service]\nType=oneshot\nUser=app\nExecStart=/usr/local/bin/backup --all\n"
    )
    _enable(
        r,
        "backup.timer",
        "[Timer]\nOnCalendar=*-*-* 03:00:00\nPersistent=true\n",
        "timers.target.wants",
    )
    _enable(r, "apt-daily.timer", "[Timer]\nOnCalendar=daily\n", "timers.target.wants")
    (r / "var/spool/cron/crontabs").mkdir(parents=True)
    (r / "var/spool/cron/crontabs/bob").write_text("# m h\n@daily /home/bob/clean.sh\n")
    s = scan(r)
    got = [(j.source, j.name, j.schedule, j.user, j.command) for j in s.schedules]
    assert got == [
        ("cron", "/etc/cron.d/stamp", "* * * * *", "app", ["sh", "-c", "date > /tmp/x"]),
        ("cron", "crontab of bob", "@daily", "bob", ["sh", "-c", "/home/bob/clean.sh"]),
        (
            "timer",
            "backup.timer",
            "OnCalendar=*-*-* 03:00:00",
            "app",
            ["/usr/local/bin/backup", "--all"],
        ),
    ]  # apt-daily.timer is the OS's own
    assert s.schedules[0].suggestion("erp") == (
        "host crontab: * * * * * compound exec -T -u app erp sh -c 'date > /tmp/x'"
    )
    assert s.schedules[2].suggestion("erp") == (
        "host: systemd-run --on-calendar='*-*-* 03:00:00' compound exec -T -u app erp"
        " /usr/local/bin/backup --all"
    )
    assert "backup.service" not in [u.name for u in s.units]  # run by its timer only


def test_a_socket_activated_service_is_started_with_the_sockets_ports(tmp_path: Path) -> None:
    r = _root(tmp_path)
    (r / "lib/systemd/system/echo.service").write_text("[Service]\nExecStart=/usr/bin/echod\n")
    _enable(r, "echo.socket", "[Socket]\nListenStream=0.0.0.0:7777\n", "sockets.target.wants")
    _enable(r, "finger.socket", "[Socket]\nListenStream=79\nAccept=yes\n", "sockets.target.wants")
    _enable(r, "dbus.socket", "[Socket]\nListenStream=/run/dbus/sock\n", "sockets.target.wants")
    s = scan(r)
    echo = next(u for u in s.units if u.name == "echo.service")
    assert echo.socket == "echo.socket" and echo.ports == [7777]
    assert 7777 in s.ports
    assert s.sockets == [
        "echo.socket -> echo.service (ports 7777): started with the container instead of on"
        " the first connection"
    ]
    assert any("finger.socket: Accept=yes" in n and "not carried" in n for n in s.notes)
    assert "finger@.service" not in [u.name for u in s.units]


def test_oneshot_units_run_first_and_to_their_end_in_the_init(tmp_path: Path) -> None:
    r = _root(tmp_path)
    _enable(
        r,
        "migrate.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/opt/app/migrate\n",
        "multi-user.target.wants",
    )
    s = scan(r)
    assert s.oneshots == ["migrate.service"]
    text = init_script(s.units)
    migrate, app = text.index("/opt/app/migrate"), text.index("/opt/app/app.py")
    assert migrate < app
    line = next(x for x in text.splitlines() if "/opt/app/migrate" in x)
    assert not line.rstrip().endswith("&")  # in the foreground, not among the pids
    script = tmp_path / "init.sh"
    script.write_text(text)
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_the_init_really_waits_for_a_oneshot_before_starting_the_rest(tmp_path: Path) -> None:
    from compound.runtimes.vm.liftscan import Unit

    log = tmp_path / "log"
    units = [
        Unit("server.service", "systemd", exec_start=["sh", "-c", f"echo server >> {log}"]),
        Unit(
            "setup.service",
            "systemd",
            exec_start=["sh", "-c", f"sleep 0.3; echo setup >> {log}"],
            type="oneshot",
        ),
    ]
    script = tmp_path / "init.sh"
    script.write_text(init_script(units))
    subprocess.run(["sh", str(script)], timeout=20, check=False)
    assert log.read_text().split() == ["setup", "server"]
