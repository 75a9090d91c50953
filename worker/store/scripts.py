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
# Found when this module is imported: the msgworker alias may load this package where another
# package holds the name ``worker`` later on.
LUA = resources.files(__package__ or "worker").joinpath("lua")


def script_source(name: str, *, include: Sequence[str] = ()) -> str:
    """``lua/<name>.lua`` after the key builders and ``include``."""
    parts = [KEY_BUILDERS, *include, name]
    return "\n".join(LUA.joinpath(f"{part}.lua").read_text(encoding="utf-8") for part in parts)


def load_script(client: redis.Redis, name: str, *, include: Sequence[str] = ()) -> Any:
    """``lua/<name>.lua`` bound to ``client``, after the key builders and ``include``."""
    return client.register_script(script_source(name, include=include))
