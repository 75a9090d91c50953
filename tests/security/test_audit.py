"""The dependency audit: OSV ranges read right, the lock parsed strictly, the mirror rebuilt
from a checkout of the advisory database, and a vulnerable pin failing the audit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.version import Version

from security.audit import (
    Advisory,
    AuditError,
    audit,
    load_mirror,
    parse_events,
    read_lock,
    records_for,
)

ROOT = Path(__file__).resolve().parents[2]


def advisory(*ranges, versions=(), package="celery"):
    return Advisory(
        id="PYSEC-TEST-1",
        aliases=("CVE-TEST-1",),
        package=package,
        summary="a test advisory",
        ranges=tuple(parse_events(events) for events in ranges),
        versions=frozenset(Version(v) for v in versions),
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9", False),
        ("1.0", True),
        ("1.5", True),
        ("2.0", False),
        ("2.5", False),
        ("3.0", True),
        ("3.4.9", True),
        ("3.5", False),
    ],
)
def test_introduced_opens_and_fixed_closes_exclusively(version, expected):
    events = [{"introduced": "3.0"}, {"fixed": "3.5"}, {"introduced": "1.0"}, {"fixed": "2.0"}]
    assert advisory(events).affects(Version(version)) is expected


@pytest.mark.parametrize(("version", "expected"), [("0.1", True), ("4.2", True), ("4.2.1", False)])
def test_last_affected_closes_inclusively(version, expected):
    assert (
        advisory([{"introduced": "0"}, {"last_affected": "4.2"}]).affects(Version(version))
        is expected
    )


def test_a_range_with_no_fix_affects_every_later_release():
    assert advisory([{"introduced": "0"}]).affects(Version("99.0"))


def test_listed_versions_are_affected_even_without_a_range():
    listed = advisory(versions=("5.2.0", "5.2.1"))
    assert listed.affects(Version("5.2.1"))
    assert not listed.affects(Version("5.2.2"))


def test_read_lock_takes_pins_and_skips_hashes_comments_and_markers():
    lock = textwrap.dedent("""\
        # header
        Celery==5.7.0 \\
            --hash=sha256:aa
            # via msgworker
        async-timeout==5.0.1 ; python_full_version < '3.11.3' \\
            --hash=sha256:bb
        """)
    assert read_lock(lock) == {"celery": Version("5.7.0"), "async-timeout": Version("5.0.1")}


@pytest.mark.parametrize("line", ["celery>=5.4", "celery", "celery==", "=="])
def test_read_lock_refuses_what_is_not_a_pin_naming_the_line(line):
    with pytest.raises(AuditError, match=r"reqs line 2: .*pin"):
        read_lock(f"# ok\n{line}\n", origin="reqs")


def test_audit_reports_affected_pins_and_packages_the_mirror_does_not_cover():
    pins = {"celery": Version("5.2.1"), "redis": Version("8.1.0"), "newdep": Version("1.0")}
    celery_fix = advisory([{"introduced": "0"}, {"fixed": "5.2.2"}])
    report = audit(pins, covered={"celery", "redis"}, advisories=[celery_fix])
    assert [(f.package, str(f.version)) for f in report.findings] == [("celery", "5.2.1")]
    assert "fixed in 5.2.2" in str(report.findings[0])
    assert report.uncovered == ["newdep"]
    assert not report.clean
    assert audit({"celery": Version("5.2.2")}, {"celery"}, [celery_fix]).clean


def write_record(tree: Path, folder: str, name: str, record: str) -> None:
    path = tree / "vulns" / folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(record))


@pytest.fixture
def advisory_tree(tmp_path):
    """A small checkout of the advisory database: live, withdrawn and unrelated records."""
    tree = tmp_path / "advisory-database"
    write_record(
        tree,
        "celery",
        "PYSEC-2021-858",
        """\
        id: PYSEC-2021-858
        aliases: [CVE-2021-23727, GHSA-q4xr-rc97-m4xx]
        modified: 2022-01-01T00:00:00Z
        details: This affects the package celery before 5.2.2. It by default trusts messages. More text.
        affected:
        - package: {ecosystem: PyPI, name: celery}
          ranges:
          - type: GIT
            repo: https://example.invalid/celery
            events: [{introduced: "0"}, {fixed: abc123}]
          - type: ECOSYSTEM
            events: [{introduced: "0"}, {fixed: 5.2.2}]
          versions: ["5.2.0", "5.2.1"]
        """,
    )
    write_record(
        tree,
        "celery",
        "PYSEC-2099-1",
        """\
        id: PYSEC-2099-1
        withdrawn: 2023-01-01T00:00:00Z
        summary: withdrawn
        affected:
        - package: {ecosystem: PyPI, name: celery}
          ranges: [{type: ECOSYSTEM, events: [{introduced: "0"}]}]
        """,
    )
    write_record(
        tree,
        "Prometheus_Client",
        "PYSEC-2099-2",
        """\
        id: PYSEC-2099-2
        summary: named with another spelling
        affected:
        - package: {ecosystem: PyPI, name: Prometheus_Client}
          ranges: [{type: ECOSYSTEM, events: [{introduced: "0"}, {fixed: "0.1"}]}]
        """,
    )
    write_record(
        tree,
        "django",
        "PYSEC-2099-3",
        """\
        id: PYSEC-2099-3
        summary: not a locked package
        affected:
        - package: {ecosystem: PyPI, name: django}
          ranges: [{type: ECOSYSTEM, events: [{introduced: "0"}]}]
        """,
    )
    return tree


def test_refresh_keeps_live_records_of_locked_packages_with_their_ecosystem_ranges(advisory_tree):
    entries = records_for(advisory_tree, {"celery", "prometheus-client", "redis"})
    assert [e["id"] for e in entries] == ["PYSEC-2021-858", "PYSEC-2099-2"]
    celery = entries[0]
    assert celery["ranges"] == [[{"introduced": "0"}, {"fixed": "5.2.2"}]]
    assert celery["versions"] == ["5.2.0", "5.2.1"]
    assert celery["aliases"] == ["CVE-2021-23727", "GHSA-q4xr-rc97-m4xx"]
    assert celery["summary"] == "This affects the package celery before 5.2.2"
    assert entries[1]["package"] == "prometheus-client"


def run_audit(*args):
    return subprocess.run(  # noqa: S603 - this interpreter, our module
        [sys.executable, "-m", "security.audit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.processes
def test_refreshed_mirror_fails_a_vulnerable_lock_and_passes_a_fixed_one(advisory_tree, tmp_path):
    """End to end through the command: refresh from the tree, then audit two locks."""
    mirror = tmp_path / "advisories.json"
    vulnerable = tmp_path / "vulnerable.lock"
    vulnerable.write_text("celery==5.2.1 \\\n    --hash=sha256:aa\nredis==8.1.0\n")
    done = run_audit(
        "--lock", str(vulnerable), "--mirror", str(mirror), "--refresh-from", str(advisory_tree)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(mirror.read_text())["packages"] == ["celery", "redis"]

    done = run_audit("--lock", str(vulnerable), "--mirror", str(mirror))
    assert done.returncode == 1
    assert (
        "VULNERABLE celery 5.2.1: PYSEC-2021-858 (CVE-2021-23727, GHSA-q4xr-rc97-m4xx), fixed in 5.2.2"
        in done.stdout
    )

    fixed = tmp_path / "fixed.lock"
    fixed.write_text("celery==5.2.2\nredis==8.1.0\nhttpx==0.28.1\n")
    done = run_audit("--lock", str(fixed), "--mirror", str(mirror))
    assert done.returncode == 1
    assert "NOT COVERED by advisories.json: httpx" in done.stdout
    assert "VULNERABLE" not in done.stdout


@pytest.mark.processes
def test_a_broken_lock_or_mirror_is_a_one_line_error(tmp_path):
    broken = tmp_path / "broken.lock"
    broken.write_text("celery>=5\n")
    done = run_audit("--lock", str(broken))
    assert done.returncode == 2
    assert done.stderr.strip().endswith("line 1: celery>=5 is not a name==version pin")
    garbage = tmp_path / "mirror.json"
    garbage.write_text("{not json")
    done = run_audit("--mirror", str(garbage))
    assert done.returncode == 2
    assert "not a readable advisory mirror" in done.stderr
    assert "Traceback" not in done.stderr
    bad_version = tmp_path / "bad-version.json"
    entry = {"id": "X-1", "aliases": [], "package": "celery", "summary": "s", "versions": []}
    mirror = {"source": "s", "made": "d", "newest_record": "d", "packages": ["celery"]}
    bad_version.write_text(
        json.dumps({**mirror, "advisories": [{**entry, "ranges": [[{"fixed": "not a version"}]]}]})
    )
    done = run_audit("--mirror", str(bad_version))
    assert done.returncode == 2
    assert "not a readable advisory mirror" in done.stderr
    assert "Traceback" not in done.stderr


def test_listed_versions_that_predate_pep_440_are_ignored_not_fatal(tmp_path):
    mirror = tmp_path / "legacy.json"
    entry = {"id": "X-1", "aliases": [], "package": "celery", "summary": "s", "ranges": []}
    mirror.write_text(
        json.dumps(
            {
                "source": "s",
                "made": "d",
                "newest_record": "d",
                "packages": ["celery"],
                "advisories": [{**entry, "versions": ["0.5.2-UNSTABLE", "5.2.1"]}],
            }
        )
    )
    _, (loaded,) = load_mirror(mirror)
    assert loaded.versions == frozenset({Version("5.2.1")})
    assert loaded.affects(Version("5.2.1"))
