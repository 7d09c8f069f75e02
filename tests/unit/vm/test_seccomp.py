"""The launcher's seccomp profile is Docker's default plus exactly one rule."""

from __future__ import annotations

import pytest

from compound.errors import VMError
from compound.runtimes.vm.seccomp import CLONE_FS, RULE, with_clone_fs

BASE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "archMap": [],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["unshare"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    ],
}


def test_one_rule_is_added_for_clone_fs_only_and_nothing_else_changes() -> None:
    out = with_clone_fs(BASE)
    assert out["defaultAction"] == "SCMP_ACT_ERRNO"
    assert out["syscalls"][:2] == BASE["syscalls"]
    assert out["syscalls"][2] == RULE
    (arg,) = RULE["args"]  # type: ignore[misc]
    assert arg == {"index": 0, "value": CLONE_FS, "valueTwo": 0, "op": "SCMP_CMP_EQ"}
    assert with_clone_fs(out) == out  # idempotent


@pytest.mark.parametrize(
    "bad",
    [{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}, {"defaultAction": "SCMP_ACT_ERRNO"}],
)
def test_a_profile_that_is_not_deny_by_default_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(VMError, match="does not look like one"):
        with_clone_fs(bad)
