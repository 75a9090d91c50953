"""The exit codes of every ``msgworker`` command, in one place.

0 ok, 1 failure, 2 usage or refused input, 69 Redis or broker unreachable (sysexits
EX_UNAVAILABLE), 78 invalid settings (sysexits EX_CONFIG), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE
EXIT_CONFIG = 78  # sysexits EX_CONFIG
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
