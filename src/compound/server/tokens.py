"""The server's two tokens: an operator token (may act) and a read-only token.

Created at the first start, printed once, and kept only as SHA-256 digests
in ``<state dir>/serve-tokens.json`` (0600): a leaked file does not leak a
token. Lose a token and you delete the file; the next start makes new ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from compound.errors import StateError

OPERATOR = "operator"
READ_ONLY = "read-only"
ROLES = (OPERATOR, READ_ONLY)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Tokens:
    digests: dict[str, str]  # role -> sha256 of its token

    def role_of(self, token: str) -> str | None:
        """The role a presented token grants (constant-time compare), or None."""
        presented = _digest(token)
        found = None
        for role, digest in self.digests.items():
            if hmac.compare_digest(presented, digest):
                found = role
        return found


def load_or_create(path: Path) -> tuple[Tokens, dict[str, str] | None]:
    """The tokens, and the new plaintext ones when this call created them."""
    if path.exists():
        try:
            data = json.loads(path.read_text())
            digests = {r: str(data[r]) for r in ROLES}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"the token file {path} cannot be read: {exc}",
                hint="delete it and start `compound serve` again to make new tokens",
            ) from exc
        return Tokens(digests), None
    fresh = {role: f"cmp_{role.replace('-', '')}_{secrets.token_urlsafe(32)}" for role in ROLES}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({r: _digest(t) for r, t in fresh.items()}, f)
        os.replace(tmp, path)  # whole or not at all
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StateError(f"cannot write the token file {path}: {exc}") from exc
    return Tokens({r: _digest(t) for r, t in fresh.items()}), fresh
