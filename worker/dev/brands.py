"""The demo's two brands: accounts of their own beside the default one, each with its key and
limits in the sandbox; brand_a's key in a file, revoked at first, brand_b's in a variable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

# Two more accounts, each with its own key and limits: brand_a's key is in a file (revoked at
# first), brand_b's in a variable.
BRAND_A_KEY = "sk_demo_brand_a_2b7d"
BRAND_A_REVOKED = "sk_demo_brand_a_revoked"
BRAND_B_KEY = "sk_demo_brand_b_9f4e"
BRAND_RATE_PER_SEC = 20


@dataclass(frozen=True)
class Brands:
    """The two brands' setup: the accounts file, brand_a's key file, each key's sandbox label."""

    accounts_file: Path
    key_file: Path
    key_labels: dict[str, str]


def set_up_brands(sandbox_url: str, workdir: Path) -> Brands:
    """The brands' keys in the sandbox with their own limits; the demo's accounts file (default on
    MSGWORKER_API_KEY, as without a file, and the two brands); brand_a's key file, revoked."""
    labels = {}
    for account, key in (("brand_a", BRAND_A_KEY), ("brand_b", BRAND_B_KEY)):
        spec = {"api_key": key, "rate_per_sec": BRAND_RATE_PER_SEC}
        added = httpx.post(f"{sandbox_url}/sandbox/keys", json=spec, timeout=10)
        labels[account] = str(added.raise_for_status().json()["key_label"])
    key_file = workdir / "brand_a.key"
    key_file.write_text(BRAND_A_REVOKED + "\n")
    accounts = workdir / "accounts.toml"
    accounts.write_text(
        '[accounts.default]\napi_key_env = "MSGWORKER_API_KEY"\nwaba_id = "sandbox"\n'
        f'[accounts.brand_a]\napi_key_file = "{key_file.name}"\n'
        f"rate_per_sec = {BRAND_RATE_PER_SEC}\nsandbox = false\n"
        '[accounts.brand_b]\napi_key_env = "DEMO_BRAND_B_KEY"\n'
        f"rate_per_sec = {BRAND_RATE_PER_SEC}\nsandbox = false\n"
    )
    return Brands(accounts, key_file, labels)
