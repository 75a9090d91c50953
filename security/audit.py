"""Audit requirements.lock against known vulnerabilities, offline.

PyPI's vulnerability data (what pip-audit asks for) cannot be reached from every machine that
builds or tests us, so the advisories that concern the locked packages are kept beside the lock
in security/advisories.json: the PyPA advisory database's records (OSV format) for exactly the
packages in the lock. This module checks every locked version against them; a package in the
lock that the mirror does not cover fails the audit, so a new dependency cannot skip it.

    python -m security.audit                      audit requirements.lock (exit 1 on a finding)
    python -m security.audit --refresh-from DIR   rewrite the mirror from a checkout of PyPA's
                                                  advisory-database repository (DIR/vulns/...)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
MIRROR = Path(__file__).resolve().parent / "advisories.json"
SOURCE = "PyPA advisory-database: OSV records of PyPI packages (CC-BY-4.0)"

# One OSV range event, parsed: ("introduced" | "fixed" | "last_affected" | "limit", version).
Event = tuple[str, Version]


class AuditError(Exception):
    """The lock or the mirror cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    package: str
    summary: str
    ranges: tuple[tuple[Event, ...], ...]
    versions: frozenset[Version]

    def affects(self, version: Version) -> bool:
        """OSV semantics: listed in `versions`, or inside one of the ECOSYSTEM ranges."""
        return version in self.versions or any(_in_range(version, r) for r in self.ranges)

    def fixed_in(self) -> list[str]:
        return [str(at) for events in self.ranges for kind, at in events if kind == "fixed"]


@dataclass(frozen=True)
class Finding:
    package: str
    version: Version
    advisory: Advisory

    def __str__(self) -> str:
        aliases = f" ({', '.join(self.advisory.aliases)})" if self.advisory.aliases else ""
        fixed = ", ".join(self.advisory.fixed_in()) or "no fixed release"
        return (
            f"{self.package} {self.version}: {self.advisory.id}{aliases}, fixed in {fixed}: "
            f"{self.advisory.summary}"
        )


def parse_events(raw: list[dict[str, str]]) -> tuple[Event, ...]:
    """OSV events ({"introduced": "1.0"}, ...) as (kind, version), in version order."""
    events = []
    for event in raw:
        ((kind, at),) = event.items()
        events.append((kind, Version(at)))
    return tuple(sorted(events, key=lambda event: event[1]))


def _listed(versions: list[str]) -> frozenset[Version]:
    """OSV version lists keep releases that predate PEP 440; those cannot be pinned anyway."""
    parsed = set()
    for text in versions:
        try:
            parsed.add(Version(text))
        except InvalidVersion:
            continue
    return frozenset(parsed)


def _in_range(version: Version, events: tuple[Event, ...]) -> bool:
    """Walk the events in version order: introduced opens, fixed (exclusive) and last_affected
    (inclusive) close; `limit` only bounds git ranges and is ignored here."""
    affected = False
    for kind, at in events:
        if kind == "introduced" and at <= version:
            affected = True
        elif (kind == "fixed" and at <= version) or (kind == "last_affected" and at < version):
            affected = False
    return affected


def read_lock(text: str, origin: str = "requirements.lock") -> dict[str, Version]:
    """Pinned name==version lines of a pip requirements file (hash lines and comments skipped)."""
    pins: dict[str, Version] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("#", " ", "\t", "-")):
            continue
        try:
            requirement = Requirement(line.removesuffix("\\").strip())
            (spec,) = requirement.specifier
            version = Version(spec.version)
        except (InvalidRequirement, InvalidVersion, ValueError) as error:
            msg = f"{origin} line {number}: not a name==version pin ({error})"
            raise AuditError(msg) from error
        if spec.operator != "==":
            msg = f"{origin} line {number}: {requirement} is not a name==version pin"
            raise AuditError(msg)
        pins[canonicalize_name(requirement.name)] = version
    return pins


def load_mirror(path: Path = MIRROR) -> tuple[dict[str, Any], list[Advisory]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        advisories = [
            Advisory(
                id=entry["id"],
                aliases=tuple(entry["aliases"]),
                package=canonicalize_name(entry["package"]),
                summary=entry["summary"],
                ranges=tuple(parse_events(events) for events in entry["ranges"]),
                versions=_listed(entry["versions"]),
            )
            for entry in data["advisories"]
        ]
    except (OSError, ValueError, KeyError, TypeError, InvalidVersion) as error:
        msg = f"{path}: not a readable advisory mirror ({error!r})"
        raise AuditError(msg) from error
    return data, advisories


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    uncovered: list[str]

    @property
    def clean(self) -> bool:
        return not self.findings and not self.uncovered


def audit(pins: dict[str, Version], covered: set[str], advisories: list[Advisory]) -> Report:
    findings = [
        Finding(package, version, advisory)
        for package, version in sorted(pins.items())
        for advisory in advisories
        if advisory.package == package and advisory.affects(version)
    ]
    return Report(findings=findings, uncovered=sorted(set(pins) - covered))


def records_for(tree: Path, packages: set[str]) -> list[dict[str, Any]]:
    """The mirror's entries for `packages` from a checkout of the advisory database.

    Withdrawn records are left out, as pip-audit leaves them out; only ECOSYSTEM ranges are
    kept (GIT ranges name commits, not releases)."""
    folders = {canonicalize_name(d.name): d for d in (tree / "vulns").iterdir() if d.is_dir()}
    entries = []
    for package in sorted(packages & set(folders)):
        for path in sorted(folders[package].glob("*.yaml")):
            record = yaml.safe_load(path.read_text(encoding="utf-8"))
            if record.get("withdrawn"):
                continue
            for affected in record.get("affected", []):
                named = affected.get("package", {})
                if named.get("ecosystem") != "PyPI" or canonicalize_name(named["name"]) != package:
                    continue
                entries.append(
                    {
                        "id": record["id"],
                        "aliases": record.get("aliases", []),
                        "package": package,
                        "summary": _summary(record),
                        "modified": str(record.get("modified", "")),
                        "ranges": [
                            r["events"]
                            for r in affected.get("ranges", [])
                            if r["type"] == "ECOSYSTEM"
                        ],
                        "versions": [str(v) for v in affected.get("versions", [])],
                    }
                )
    return entries


def _summary(record: dict[str, Any]) -> str:
    text = record.get("summary") or (record.get("details") or "").strip().split(". ")[0]
    text = " ".join(str(text).split())
    return text if len(text) <= 200 else text[:199] + "…"


def refresh(tree: Path, pins: dict[str, Version], path: Path = MIRROR) -> int:
    if not (tree / "vulns").is_dir():
        msg = f"{tree}: no vulns/ folder; give a checkout of the advisory-database repository"
        raise AuditError(msg)
    entries = records_for(tree, set(pins))
    mirror = {
        "source": SOURCE,
        "made": dt.datetime.now(dt.UTC).date().isoformat(),
        # What the verdict can know of: advisories published after this are not in the mirror.
        "newest_record": max((entry["modified"] for entry in entries), default="")[:10],
        "packages": sorted(pins),
        "advisories": entries,
    }
    path.write_text(json.dumps(mirror, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m security.audit", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--lock", type=Path, default=LOCK, help="the requirements file to audit")
    parser.add_argument("--mirror", type=Path, default=MIRROR, help="the advisory mirror")
    parser.add_argument("--refresh-from", type=Path, metavar="DIR", help="rewrite the mirror")
    args = parser.parse_args(argv)
    try:
        pins = read_lock(args.lock.read_text(encoding="utf-8"), origin=str(args.lock))
        if args.refresh_from:
            count = refresh(args.refresh_from, pins, args.mirror)
            print(f"wrote {args.mirror}: {count} advisories for {len(pins)} locked packages")
            return 0
        data, advisories = load_mirror(args.mirror)
    except (OSError, AuditError) as error:
        print(f"audit: {error}", file=sys.stderr)
        return 2
    report = audit(pins, set(data["packages"]), advisories)
    for finding in report.findings:
        print(f"VULNERABLE {finding}")
    if report.uncovered:
        print(
            f"NOT COVERED by {args.mirror.name}: {', '.join(report.uncovered)} "
            "(refresh it: python -m security.audit --refresh-from DIR)"
        )
    print(
        f"audited {len(pins)} locked packages against {len(advisories)} advisories "
        f"({data['source']}; mirror made {data['made']}, newest record {data['newest_record']}): "
        + ("no known vulnerability" if report.clean else f"{len(report.findings)} found")
    )
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
