"""A Node client generated from the document a real ``msgworker serve`` serves (openapi-typescript
for the types, openapi-fetch for the calls, tsc to check the script against them) enqueues a
message; the job is then visible through the API.

npm's packages are kept in a cache outside the checkout (``~/.cache/msgworker-tests/npm``), so a
machine downloads them once; node and npm missing is a failure naming what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.serve import TOKEN, Service

pytestmark = pytest.mark.processes  # every test here runs real child processes

CLIENT = Path(__file__).parents[1] / "node_client"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "msgworker-tests"
# npm's first install downloads ~20 MB; generating and compiling take seconds.
STEP_TIMEOUT_S = 240


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not on PATH: apt-get install nodejs npm (./run test installs them)"
    return found


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own commands
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.timeout(STEP_TIMEOUT_S * 4)
def test_a_generated_node_client_enqueues_a_message_that_is_then_visible(redis_url, tmp_path):
    """Types generated from /openapi.json, the script type-checked against them, run by node:
    202 with an id, the job readable by that id, a bad `to` answered 422 naming the field."""
    node, npm = tool("node"), tool("npm")
    service = Service(tmp_path, broker_url=redis_url, ingest_tokens=TOKEN).start()
    try:
        work = tmp_path / "client"
        shutil.copytree(CLIENT, work, ignore=shutil.ignore_patterns("node_modules", "dist"))
        (work / "openapi.json").write_bytes(httpx.get(f"{service.url}/openapi.json").content)
        run(
            [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--cache", str(CACHE)],
            work,
        )
        bin_dir = work / "node_modules" / ".bin"
        # Defaults are filled in by the service, so a field with one is optional to a client.
        generate = [str(bin_dir / "openapi-typescript"), "openapi.json", "-o", "api.ts"]
        run([node, *generate, "--default-non-nullable", "false"], work)
        run([node, str(bin_dir / "tsc"), "-p", "."], work)
        env = {**os.environ, "API_URL": service.url, "API_TOKEN": TOKEN}
        result = json.loads(run([node, "dist/enqueue.js"], work, env=env))

        assert result["state"] == "queued"
        assert result["refused"] == ["message.to"]
        job = httpx.get(
            f"{service.url}/v1/jobs/{result['id']}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert job.status_code == 200
        assert job.json()["id"] == result["id"]
        assert job.json()["account"] == "default"
    finally:
        service.stop()
