"""The error `up --swarm` gives when a project does not converge names the
host behind each task error and the hosts that are not ready."""

from __future__ import annotations

from typing import Any

from compound.hosts.deploy import not_converged_message


def _st(running: int, desired: int, errors: list[str], pending: list[str] | None = None) -> Any:
    return {
        "running": running,
        "desired": desired,
        "update": None,
        "errors": errors,
        "pending": pending or [],
    }


def test_a_missing_image_names_the_host_and_says_no_node_can_pull_it() -> None:
    status = {
        "web": _st(0, 1, ["No such image: local/app:1 (on swarm-t2)"]),
        "db": _st(1, 1, []),
    }
    msg = not_converged_message("shop", ["web", "db"], status, [])
    assert msg == (
        "project shop did not converge: web: 0/1 running "
        "(No such image: local/app:1 (on swarm-t2) (no node can pull the image))"
    )


def test_a_node_lost_during_the_deploy_is_named() -> None:
    status = {"static": _st(0, 1, [], ["no suitable node (1 node not available)"])}
    msg = not_converged_message("shop", ["static", "api"], status, ["swarm-t3 (down)"])
    assert "static: 0/1 running (no suitable node (1 node not available))" in msg
    assert "api: not created" in msg
    assert msg.endswith("; hosts not ready: swarm-t3 (down)")
