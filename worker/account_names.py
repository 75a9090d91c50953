"""What an account may be called, and the account a job has when it names none.

Every layer speaks of accounts by name: the accounts file, a producer's job, the keys in Redis,
the metrics' labels, the CLI's ``--account``. The names they agree on are here, below them all.
"""

from __future__ import annotations

import re

# Without an accounts file this is the one account (on API_KEY); a job naming none is sent on it.
DEFAULT_ACCOUNT = "default"
# An account's (or an ingest client's) name in the accounts file.
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
