"""requirements.lock: it pins every shipped dependency inside pyproject's ranges, with hashes,
and the tests run exactly the locked versions (./run installs from the lock, as the image does)."""

from __future__ import annotations

from importlib.metadata import distributions, requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from security.audit import LOCK, read_lock

LOCK_TEXT = LOCK.read_text(encoding="utf-8")
PINS = read_lock(LOCK_TEXT)


# The image ships the producer (the base install), the worker and the HTTP service.
SHIPPED_EXTRAS = ("worker", "serve")


def shipped_requirements() -> list[Requirement]:
    found = [Requirement(text) for text in requires("msgworker") or []]
    return [
        r
        for r in found
        if r.marker is None
        or "extra" not in str(r.marker)
        or any(r.marker.evaluate({"extra": extra}) for extra in SHIPPED_EXTRAS)
    ]


def test_lock_pins_every_shipped_dependency_inside_its_range():
    shipped = shipped_requirements()
    assert len(shipped) >= 8
    for requirement in shipped:
        name = canonicalize_name(requirement.name)
        assert name in PINS, f"{name} is not in requirements.lock: run ./run lock"
        assert requirement.specifier.contains(PINS[name]), (name, str(PINS[name]))


def test_every_pin_carries_hashes():
    """pip --require-hashes (./run, the image) checks each file against them."""
    lines = LOCK_TEXT.splitlines()
    pinned = [i for i, line in enumerate(lines) if line[:1].isalpha()]
    assert len(pinned) == len(PINS)
    for i in pinned:
        assert lines[i].endswith("\\"), lines[i]
        assert lines[i + 1].lstrip().startswith("--hash=sha256:"), lines[i]


def test_the_tests_run_the_locked_versions():
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in distributions()}
    for name, version in PINS.items():
        if name in installed:
            assert installed[name] == version, (name, str(installed[name]), str(version))
        else:
            line = next(line for line in LOCK_TEXT.splitlines() if line.startswith(f"{name}=="))
            marker = Requirement(line.removesuffix("\\").strip()).marker
            assert marker is not None, f"{name} is locked but not installed"
            assert not marker.evaluate(), f"{name} is locked for this platform but not installed"
