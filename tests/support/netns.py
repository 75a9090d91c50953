"""A network namespace joined to this host by one veth pair, so a test can cut a real link.

A server started with `Link.prefix` lives in the namespace at `Link.inside`; this host's end of
the pair is `Link.outside` (a private /30, unique to this process). `cut` takes this host's end
down: packets between the two sides stop, as in a partition, while both addresses stay local to
their own side. Making a namespace needs root (CAP_NET_ADMIN) and the `ip` command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

IP = shutil.which("ip") or "ip"


def _ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True)  # noqa: S603 - fixed arguments


def available() -> bool:
    """This process may make a namespace (root, with the `ip` command)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


@dataclass(frozen=True)
class Link:
    """The namespace, its address, this host's address on the pair, and this host's device."""

    namespace: str
    inside: str
    outside: str
    device: str

    @property
    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return [IP, "netns", "exec", self.namespace]

    def cut(self) -> None:
        _ip("link", "set", self.device, "down")

    def heal(self) -> None:
        _ip("link", "set", self.device, "up")


@contextmanager
def namespace() -> Iterator[Link]:
    """A namespace and its veth pair for the block; both deleted after it, even on failure."""
    pid = os.getpid()
    # 10.213.0.0/16 holds 16,384 /30s; the process id picks one, so parallel runs do not meet.
    base = (pid % 16384) * 4
    inside = f"10.213.{base // 256}.{base % 256 + 1}"
    outside = f"10.213.{base // 256}.{base % 256 + 2}"
    link = Link(f"msgworker-{pid}", inside, outside, device=f"mw{pid}o")
    try:
        _ip("netns", "add", link.namespace)
        _ip("link", "add", link.device, "type", "veth", "peer", "name", f"mw{pid}i")
        _ip("link", "set", f"mw{pid}i", "netns", link.namespace)
        _ip("addr", "add", f"{outside}/30", "dev", link.device)
        _ip("link", "set", link.device, "up")
        inner = ["netns", "exec", link.namespace, IP]
        _ip(*inner, "addr", "add", f"{inside}/30", "dev", f"mw{pid}i")
        _ip(*inner, "link", "set", f"mw{pid}i", "up")
        _ip(*inner, "link", "set", "lo", "up")
        yield link
    finally:
        # Deleting this host's end deletes the pair; then the namespace (each may be absent).
        subprocess.run([IP, "link", "del", link.device], check=False, capture_output=True)  # noqa: S603
        subprocess.run([IP, "netns", "del", link.namespace], check=False, capture_output=True)  # noqa: S603
