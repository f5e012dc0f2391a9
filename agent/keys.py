"""CURVE keys (ZeroMQ's authenticated encryption) for agents and their clients.

A key folder (``dianne keys generate DIR``) holds ZeroMQ certificate files (text, ZPL format):
``agent.key`` / ``agent.key_secret`` — the keypair every agent of the site serves with (and uses
when it sends tensors to another agent); ``client.key`` / ``client.key_secret`` (or another name)
— a client's keypair; ``authorized/`` — the public keys an agent accepts. A client trusts the
agent public key found in its folder; an agent refuses any client whose public key is not in
``authorized/``. Secret files are written with mode 0600.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DianneError

AGENT = "agent"
CLIENT = "client"


@dataclass(frozen=True)
class Keys:
    """What one side needs: its own keypair, the agents' public key, the authorized folder."""

    public: bytes
    secret: bytes
    server_public: bytes
    authorized: Path


def generate(folder: str | os.PathLike[str], name: str = CLIENT) -> list[Path]:
    """Create the site's agent keypair if missing, a keypair ``name`` if missing, and list
    both public keys in ``authorized/``. Returns the files written."""
    import zmq.auth  # noqa: PLC0415

    root = Path(folder)
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise DianneError(f"a key name is letters, digits, '-' and '_'. Received: {name!r}")
    (root / "authorized").mkdir(parents=True, exist_ok=True)
    written = []
    for who in dict.fromkeys((AGENT, name)):
        if not (root / f"{who}.key_secret").exists():
            pub, sec = zmq.auth.create_certificates(str(root), who)
            os.chmod(sec, 0o600)
            written += [Path(pub), Path(sec)]
        target = root / "authorized" / f"{who}.key"
        if not target.exists():
            shutil.copyfile(root / f"{who}.key", target)
            written.append(target)
    return written


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth  # noqa: PLC0415

    if not path.is_file():
        raise DianneError(f"{path}: no such key file (create one with 'dianne keys generate "
                          f"{path.parent}')")
    try:
        pub, sec = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise DianneError(f"{path}: not a ZeroMQ certificate: {exc}") from None
    if secret and not sec:
        raise DianneError(f"{path}: holds no secret key")
    return pub, sec


def load(folder: str | os.PathLike[str], name: str = CLIENT) -> Keys:
    """The keys of ``name`` (``agent`` for an agent) in ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        raise DianneError(f"{root}: no such key folder (create it with 'dianne keys generate "
                          f"{root}')")
    pub, sec = _load(root / f"{name}.key_secret", secret=True)
    server, _ = _load(root / f"{AGENT}.key", secret=False)
    return Keys(pub, sec or b"", server, root / "authorized")


def client_options(sock: object, keys: Keys | None) -> None:
    """Make ``sock`` a CURVE client of the agents (no-op without keys)."""
    if keys is None:
        return
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret
    sock.curve_serverkey = keys.server_public


def server_options(sock: object, keys: Keys | None) -> None:
    """Make ``sock`` a CURVE server (no-op without keys)."""
    if keys is None:
        return
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret
    sock.curve_server = True
