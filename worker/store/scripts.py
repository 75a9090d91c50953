"""Lua scripts in ``lua/`` beside this module, registered once per client (EVALSHA, reloaded
if flushed).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis

# Included first in every script: the key-name builders, twins of ``worker.store.keys``.
KEY_BUILDERS = "keys"


def load_script(client: redis.Redis, name: str, *, include: Sequence[str] = ()) -> Any:
    """``lua/<name>.lua`` bound to ``client``, after the key builders and ``include``."""
    parts = [KEY_BUILDERS, *include, name]
    lua = resources.files("worker.store").joinpath("lua")
    source = "\n".join(lua.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in parts)
    return client.register_script(source)
