"""worker/ has no import cycle: a module's imports lead down, never back to it.

A cycle means two modules are one concept split in two, or one reaches above its layer; either
way each needs the other half-imported (the import inside a function that hides it is the sign).
grimp (which lint-imports reads the imports with) sees every import, lazy ones included.
"""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("worker", cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> dict[frozenset[str], tuple[str, ...]]:
    """Each import that some chain leads back from, with that way round (importer first)."""
    found: dict[frozenset[str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                found.setdefault(frozenset({importer, imported}), (importer, *back))
    return found


def test_no_module_of_worker_imports_itself_back(graph):
    """No import in worker/ starts a chain of imports that leads back to its importer."""
    cycles = [" -> ".join(chain) for chain in _cycles(graph).values()]
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))
