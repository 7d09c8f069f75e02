"""``develop`` (Compose's develop specification) → ``model.Develop``.

The official schema of compound's vintage has no ``develop``, so the
overlay accepts any mapping and every rule is checked here, each problem at
its own file:line: an unknown action or key, a sync action without a
target, a ``sync+exec`` without an ``exec.command``, a target that is not
an absolute path.
"""

from __future__ import annotations

import difflib
import shlex
from typing import Any, get_args

from . import convert
from .context import Context, Invalid, invalid
from .model import Develop, WatchAction, WatchExec, WatchRule
from .nodes import Path

ACTIONS: tuple[str, ...] = get_args(WatchAction)
SYNC_ACTIONS = ("sync", "sync+restart", "sync+exec")
_RULE_KEYS = ("path", "action", "target", "ignore", "include", "initial_sync", "exec")
_EXEC_KEYS = ("command", "user", "privileged", "working_dir", "environment")


def develop(value: Any, path: Path, ctx: Context) -> Develop | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        invalid(path, "develop must be a mapping", "write develop: {watch: [...]}")
    _known_keys(value, path, ("watch",))
    watch = value.get("watch")
    if watch is None:
        return Develop()
    if not isinstance(watch, list):
        invalid((*path, "watch"), "develop.watch must be a list of rules")
    rules = []
    for i, item in enumerate(watch):
        try:
            rules.append(_rule(item, (*path, "watch", i), ctx))
        except Invalid as exc:
            ctx.report(exc)
    return Develop(watch=tuple(rules))


def _known_keys(value: dict[str, Any], path: Path, known: tuple[str, ...]) -> None:
    for key in value:
        if str(key).startswith("x-") or key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1)
        invalid(
            (*path, key),
            f"unknown key {key!r}",
            f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}",
        )


def _rule(item: Any, path: Path, ctx: Context) -> WatchRule:
    if not isinstance(item, dict):
        invalid(path, "a watch rule must be a mapping with path and action")
    _known_keys(item, path, _RULE_KEYS)
    if not item.get("path"):
        invalid(path, "a watch rule needs a path (the host file or directory to watch)")
    action = item.get("action")
    if action is None:
        invalid(path, "a watch rule needs an action", f"one of: {', '.join(ACTIONS)}")
    action = convert.scalar_text(action)
    if action not in ACTIONS:
        close = difflib.get_close_matches(action, ACTIONS, n=1)
        invalid(
            (*path, "action"),
            f"unknown watch action {action!r}",
            f"did you mean {close[0]!r}?" if close else f"one of: {', '.join(ACTIONS)}",
        )
    target = item.get("target")
    if action in SYNC_ACTIONS:
        if not target:
            invalid(
                path,
                f"action {action!r} needs a target (the path in the instance to sync to)",
                "add target: /app (for example)",
            )
        if not str(target).startswith("/"):
            invalid((*path, "target"), f"target {target!r} must be an absolute path")
    exec_spec = None
    if action == "sync+exec":
        if not isinstance(item.get("exec"), dict):
            invalid(path, "action 'sync+exec' needs an exec block with a command")
        exec_spec = _exec(item["exec"], (*path, "exec"), ctx)
    elif item.get("exec") is not None:
        invalid((*path, "exec"), f"exec applies to action 'sync+exec', not {action!r}")
    initial = item.get("initial_sync", False)
    if not isinstance(initial, bool):
        invalid((*path, "initial_sync"), "initial_sync must be true or false")
    return WatchRule(
        path=ctx.host_path(str(item["path"])),
        action=action,
        target=str(target).rstrip("/") or "/" if target else None,
        ignore=_patterns(item.get("ignore"), (*path, "ignore")),
        include=_patterns(item.get("include"), (*path, "include")),
        initial_sync=initial,
        exec=exec_spec,
    )


def _patterns(value: Any, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, str | list):
        invalid(path, "must be a pattern or a list of patterns")
    return convert.string_list(value)


def _exec(value: dict[str, Any], path: Path, ctx: Context) -> WatchExec:
    _known_keys(value, path, _EXEC_KEYS)
    command = value.get("command")
    if not (isinstance(command, str | list) and command):
        invalid((*path, "command"), "exec needs a command (a string or a list)")
    if isinstance(command, str):
        try:
            parts: tuple[str, ...] = tuple(shlex.split(command))  # as Compose splits it
        except ValueError as exc:
            invalid((*path, "command"), f"cannot split the command: {exc}")
    else:
        parts = tuple(convert.scalar_text(c) for c in command)
    env = convert.key_values(
        value.get("environment") or {}, (*path, "environment"), missing=ctx.lookup
    )
    privileged = value.get("privileged", False)
    if not isinstance(privileged, bool):
        invalid((*path, "privileged"), "privileged must be true or false")
    return WatchExec(
        command=parts,
        user=convert.scalar_text(value["user"]) if value.get("user") is not None else None,
        privileged=privileged,
        working_dir=value.get("working_dir"),
        environment={k: v for k, v in env.items() if v is not None},
    )
