"""Lua scripts in ``worker/lua/``, registered once per client (EVALSHA, reloaded if flushed)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis

# Included first in every script: the key-name builders, twins of ``worker.keys``.
KEY_BUILDERS = "keys"


def script_source(name: str, *, include: Sequence[str] = ()) -> str:
    """``worker/lua/<name>.lua`` after the key builders and ``include``."""
    parts = [KEY_BUILDERS, *include, name]
    lua = resources.files("worker").joinpath("lua")
    return "\n".join(lua.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in parts)


def load_script(client: redis.Redis, name: str, *, include: Sequence[str] = ()) -> Any:
    """``worker/lua/<name>.lua`` bound to ``client``, after the key builders and ``include``."""
    return client.register_script(script_source(name, include=include))
