"""Lua scripts in ``lua/`` beside this module, registered once per client (EVALSHA, reloaded
if flushed), each as ``worker.store.protocol`` declares it.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import redis

from worker.store.declaration import Script
from worker.store.protocol import lua_constants

# Included first in every script, after the generated constants: the key-name builders, twins
# of ``worker.store.keys``.
KEY_BUILDERS = "keys"
# Found when this module is imported: the msgworker alias may load this package where another
# package holds the name ``worker`` later on.
LUA = resources.files(__package__ or "worker").joinpath("lua")


def script_source(script: Script) -> str:
    """``script`` as Redis runs it: the generated constants, the key builders and the parts it
    includes from ``lua/lib/``, then ``lua/<name>.lua``."""
    parts = [LUA.joinpath("lib", f"{part}.lua") for part in (KEY_BUILDERS, *script.include)]
    lua = (
        path.read_text(encoding="utf-8") for path in [*parts, LUA.joinpath(f"{script.name}.lua")]
    )
    return "\n".join([lua_constants(script), *lua])


def load_script(client: redis.Redis, script: Script) -> Any:
    """``script`` bound to ``client``."""
    return client.register_script(script_source(script))
