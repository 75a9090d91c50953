"""Lua scripts in ``worker/lua/``, registered once per client (EVALSHA, reloaded if flushed)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis


def load_script(client: redis.Redis, name: str) -> Any:
    """The script ``worker/lua/<name>.lua`` bound to ``client``."""
    source = resources.files("worker").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
    return client.register_script(source)
