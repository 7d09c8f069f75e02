"""Hooks, jobs and providers against the in-memory driver (the real engine
and QEMU: tests/integration/test_hooks_jobs_provider.py, test_vm_compose.py)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from compound.planner.diff import UpOptions, make_plan
from compound.reconcile import hooks, jobs, provider
from compound.reconcile.apply import Applier, ApplyResult
from compound.runtimes.base import Instance
from compound.spec.model import Deploy, Provider, RestartPolicy, ServiceHook
from tests.unit.fakes import FakeDriver, instance, project, service


class HookDriver(FakeDriver):
    """A FakeDriver whose exec_capture records its calls and answers with
    the exit code given per command word (0 otherwise)."""

    def __init__(self, codes: dict[str, int] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.codes = codes or {}
        self.execs: list[dict[str, Any]] = []

    def exec_capture(
        self,
        instance: Instance,
        command: Sequence[str],
        *,
        user: str | None = None,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600.0,
        privileged: bool = False,
    ) -> tuple[int, bytes, bytes]:
        self._log("exec", f"{instance.name}:{command[0]}")
        self.execs.append(
            {
                "command": list(command),
                "user": user,
                "workdir": workdir,
                "env": env,
                "privileged": privileged,
            }
        )
        code = self.codes.get(command[0], 0)
        return code, b"line one\nline two\n", b"boom\n" if code else b""


def _apply(p: Any, driver: FakeDriver, actual: Sequence[Instance] = ()) -> ApplyResult:
    plan = make_plan(p, actual, image_ids={}, opts=UpOptions())
    return Applier(
        p, plan, {"container": driver}, ensure_resources=lambda pl, pr: None, dependency_timeout=5
    ).run()


def test_hook_runs_with_its_user_workdir_environment_and_privileges() -> None:
    svc = service(
        "web",
        post_start=(
            ServiceHook(
                command=("chown", "-R", "1001", "/data"),
                user="root",
                working_dir="/data",
                environment={"A": "1", "UNSET": None},
                privileged=True,
            ),
        ),
    )
    d = HookDriver()
    hooks.run_hooks(d, instance("web"), svc, "post_start")
    assert d.execs == [
        {
            "command": ["chown", "-R", "1001", "/data"],
            "user": "root",
            "workdir": "/data",
            "env": {"A": "1"},
            "privileged": True,
        }
    ]


def test_failing_hook_names_service_index_exit_code_and_output_tail() -> None:
    svc = service(
        "web", post_start=(ServiceHook(command=("true",)), ServiceHook(command=("register",)))
    )
    with pytest.raises(hooks.HookFailed) as info:
        hooks.run_hooks(HookDriver({"register": 3}), instance("web"), svc, "post_start")
    msg = info.value.message
    assert "service 'web'" in msg and "post_start[1]" in msg and "exited with code 3" in msg
    assert "line two" in msg and "boom" in msg


def test_failing_pre_stop_aborts_the_stop() -> None:
    svc = service("db", pre_stop=(ServiceHook(command=("flush",)),))
    d = HookDriver({"flush": 1})
    inst = instance("db")
    d.adopt(inst)
    with pytest.raises(hooks.HookFailed) as info:
        hooks.stop(d, inst, svc, 10)
    assert ("stop", inst.name) not in d.calls
    assert info.value.hint and "kill" in info.value.hint
    # a stopped instance receives no pre_stop: the stop just happens
    hooks.stop(d, instance("db", status="exited"), svc, 10)


def test_up_runs_post_start_after_start_and_fails_the_service_on_error() -> None:
    p = project(
        service("web", post_start=(ServiceHook(command=("warm",)),)),
        service("api", post_start=(ServiceHook(command=("fail",)),)),
    )
    d = HookDriver({"fail": 2})
    result = _apply(p, d)
    assert result.done == ["web"]
    assert "post_start[0]" in result.failed["api"] and "exited with code 2" in result.failed["api"]
    web = [c for c in d.calls if c[1].startswith("demo-web-1")]
    assert web == [("start", "demo-web-1"), ("exec", "demo-web-1:warm")]


def test_pre_start_runs_in_a_removed_one_off_before_the_instances() -> None:
    hook = ServiceHook(command=("init",), image="other:1", environment={"X": "y"})
    p = project(service("web", pre_start=(hook,), environment={"A": "b"}, scale=2))
    d = HookDriver()
    assert _apply(p, d).ok
    verbs = [v for v, _ in d.calls]
    first_instance = verbs.index("create")
    assert d.calls[first_instance][1] == "web-1"  # the one-off (number 1, own name)
    assert ("prepare", "web") in d.calls  # its own image is pulled
    # the one-off is created, started, waited for and removed before the replicas
    assert verbs[first_instance : first_instance + 4] == ["create", "start", "stop", "remove"]
    oneoff = hooks.pre_start_service(p.services["web"], hook)
    assert oneoff.image == "other:1" and oneoff.command == ("init",)
    assert oneoff.environment == {"A": "b", "X": "y"} and oneoff.ports == ()


def test_a_job_runs_each_instance_to_completion_and_is_kept_once_completed() -> None:
    job = service("migrate", deploy=Deploy(mode="replicated-job", replicas=2))
    p = project(job, service("app", depends=[("migrate", "service_completed_successfully")]))
    d = HookDriver(exit_codes={"migrate": 0})
    assert _apply(p, d).ok
    assert len([c for c in d.calls if c == ("create", "migrate-1")]) == 1
    assert len([c for c in d.calls if c[0] == "create" and c[1].startswith("migrate")]) == 2
    # the planner keeps completed instances: nothing to run again
    opts = UpOptions(services=("migrate",))
    want = make_plan(p, [], image_ids={}, opts=opts).for_service("migrate").config_hash
    done = [instance("migrate", n, status="exited", exit_code=0, hash_=want) for n in (1, 2)]
    plan = make_plan(p, done, image_ids={}, opts=opts)
    assert [s.action for s in plan.for_service("migrate").steps] == ["keep", "keep"]
    assert not plan.for_service("migrate").changed
    # a failed instance is run again
    failed = [instance("migrate", 1, status="exited", exit_code=3, hash_=want)]
    plan = make_plan(p, failed, image_ids={}, opts=UpOptions(services=("migrate",)))
    steps = plan.for_service("migrate").steps
    assert [(s.action, s.reason) for s in steps] == [
        ("start", "failed (exit 3): run again"),
        ("create", "missing"),
    ]


def test_a_failing_job_is_retried_as_its_restart_policy_says() -> None:
    policy = RestartPolicy(condition="on-failure", max_attempts=2)
    job = service("batch", deploy=Deploy(mode="replicated-job", restart_policy=policy))
    assert jobs.allowed_attempts(job) == 3
    d = HookDriver(exit_codes={"batch": 4})
    result = _apply(project(job), d)
    assert "exit code 4 after 3 attempts" in result.failed["batch"]
    assert len([c for c in d.calls if c[0] == "start"]) == 3
    # its instance never carries an engine restart policy: compound counts
    created = jobs.job_instance_service(job)
    assert created.restart == "no" and created.deploy.restart_policy is None
    assert jobs.allowed_attempts(service("x", deploy=Deploy(mode="global-job"))) == 1


def _provider_script(tmp_path: Path, body: str) -> dict[str, str]:
    script = tmp_path / "acme"
    script.write_text('#!/bin/sh\necho "$*" > "$(dirname "$0")/args"\n' + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{tmp_path}:{os.environ['PATH']}", "DOCKER_CONFIG": str(tmp_path / "no")}


def test_provider_protocol_args_messages_and_variables(tmp_path: Path) -> None:
    env = _provider_script(
        tmp_path,
        'echo \'{"type": "info", "message": "working"}\'\n'
        'echo \'{"type": "get-service-config"}\'\n'
        'read cfg; echo "$cfg" > "$(dirname "$0")/cfg"\n'
        'echo \'{"type": "setenv", "message": "URL=x://y=z"}\'\n'
        'echo \'{"type": "rawsetenv", "message": "TOKEN=t"}\'\n',
    )
    db = service("db", image=None, provider=Provider(type="acme", options={"size": ("1", "2")}))
    p = project(db, service("app", depends=["db"]), service("other"))
    got = provider.run(p, db, "up", environ=env, service_config='{"k": 1}')
    assert (tmp_path / "args").read_text().split() == [
        "compose",
        "--project-name=demo",
        "up",
        "--size=1",
        "--size=2",
        "db",
    ]
    assert json.loads((tmp_path / "cfg").read_text()) == {"k": 1}
    assert got.prefixed == {"URL": "x://y=z"} and got.raw == {"TOKEN": "t"}
    injected = provider.inject(p, "db", got)
    assert injected.services["app"].environment == {"DB_URL": "x://y=z", "TOKEN": "t"}
    assert injected.services["other"].environment == {}


def test_provider_error_message_and_bad_lines_fail_clearly(tmp_path: Path) -> None:
    db = service("db", image=None, provider=Provider(type="acme"))
    p = project(db)
    env = _provider_script(tmp_path, 'echo \'{"type": "error", "message": "quota"}\'\n')
    with pytest.raises(provider.ProviderError, match="the provider reported: quota"):
        provider.run(p, db, "up", environ=env)
    env = _provider_script(tmp_path, "echo hello\n")
    with pytest.raises(provider.ProviderError, match="not a JSON message"):
        provider.run(p, db, "up", environ=env)
    env = _provider_script(tmp_path, "echo oops >&2; exit 9\n")
    with pytest.raises(provider.ProviderError, match=r"exit code 9.*oops"):
        provider.run(p, db, "down", environ=env)


def test_missing_provider_binary_names_it_and_what_to_do() -> None:
    db = service("db", image=None, provider=Provider(type="nope-xyz"))
    with pytest.raises(provider.ProviderError) as info:
        provider.find_binary(db, {"PATH": "/nonexistent", "DOCKER_CONFIG": "/nonexistent"})
    assert "services.db.provider.type" in info.value.message
    assert "docker-nope-xyz" in info.value.message and info.value.hint


def test_provider_services_get_no_instances_and_dependents_do_not_wait_for_them() -> None:
    db = service("db", image=None, provider=Provider(type="acme"))
    p = project(db, service("app", depends=["db"]))
    plan = make_plan(p, [], image_ids={}, opts=UpOptions())
    assert [sp.service for sp in plan.services] == ["app"]
    assert plan.for_service("app").depends_on == ()


def test_hooks_change_the_hash_only_where_they_are_set() -> None:
    plain = service("web")
    hooked = service("web", post_start=(ServiceHook(command=("x",)),))
    assert plain.config_hash() != hooked.config_hash()
    assert service("web", post_start=()).config_hash() == plain.config_hash()


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_a_rolling_update_runs_post_start_before_the_gate_and_honours_pre_stop(
    order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compound.reconcile import rolling
    from compound.spec.model import UpdateConfig

    monkeypatch.setattr(rolling, "SETTLE", 0.0)
    hooked = {
        "post_start": (ServiceHook(command=("register",)),),
        "pre_stop": (ServiceHook(command=("flush",)),),
    }
    deploy = Deploy(replicas=1, update_config=UpdateConfig(order=order))
    p = project(service("web", deploy=deploy, **hooked))
    old = instance("web", 1, hash_="old", id="old1")
    d = HookDriver()
    d.adopt(old)
    assert _apply(p, d, [old]).ok
    verbs = [(v, w.split(":")[-1]) for v, w in d.calls if v in ("exec", "start", "stop")]
    # the successor's post_start right after its start; the predecessor's pre_stop before its stop
    assert verbs[verbs.index(("exec", "register")) - 1][0] == "start"
    assert verbs[verbs.index(("exec", "flush")) + 1] == ("stop", "demo-web-1")
    # a failing pre_stop: the predecessor is not stopped and keeps its number
    d = HookDriver({"flush": 1})
    d.adopt(old)
    result = _apply(p, d, [old])
    assert "pre_stop[0]" in result.failed["web"]
    assert d.inspect("old1").running  # never stopped: it keeps serving


def test_up_no_deps_still_runs_the_providers_a_service_depends_on() -> None:
    from compound.planner.diff import selected_providers

    db = service("db", image=None, provider=Provider(type="acme"))
    p = project(db, service("app", depends=["db"]), service("web"))
    assert selected_providers(p, UpOptions(services=("app",), no_deps=True)) == ["db"]
    assert selected_providers(p, UpOptions(services=("web",))) == []
    assert selected_providers(p, UpOptions()) == ["db"]
