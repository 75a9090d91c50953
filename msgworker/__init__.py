"""msgworker's producer API under a name that cannot clash with an app's own ``worker`` package.

``from msgworker import enqueue, TextMessage, Text`` gives the same functions and classes as
``from worker import ...``. Where the name ``worker`` is free (or already msgworker's), this is
a plain re-export. Where an app's own ``worker`` package holds the name (imported already, or
first on ``sys.path``), msgworker's package is loaded from its installed location for the time
of this import, under its own name, and the app's modules are put back afterwards: the app keeps
its ``worker``, and the functions below keep msgworker's (they bind every name at import).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

PACKAGE = "worker"
_HERE = Path(__file__).resolve().parent.parent / PACKAGE


def _is_ours(module: ModuleType | None) -> bool:
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve().parent == _HERE


def _load_ours() -> ModuleType:
    """msgworker's ``worker`` package, whoever holds the name ``worker``."""
    current = sys.modules.get(PACKAGE)
    if current is not None and _is_ours(current):
        return current
    if current is None:
        spec = importlib.util.find_spec(PACKAGE)
        if spec is not None and _is_ours_spec(spec):
            return importlib.import_module(PACKAGE)
    theirs = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == PACKAGE or name.startswith(f"{PACKAGE}.")
    }
    try:
        ours_spec = importlib.util.spec_from_file_location(
            PACKAGE, _HERE / "__init__.py", submodule_search_locations=[str(_HERE)]
        )
        assert ours_spec is not None  # noqa: S101 - the file ships with this package
        assert ours_spec.loader is not None  # noqa: S101
        ours = importlib.util.module_from_spec(ours_spec)
        sys.modules[PACKAGE] = ours
        ours_spec.loader.exec_module(ours)
    finally:
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        sys.modules.update(theirs)
    return ours


def _is_ours_spec(spec: importlib.machinery.ModuleSpec) -> bool:
    return spec.origin is not None and Path(spec.origin).resolve().parent == _HERE


_worker = _load_ours()

if TYPE_CHECKING:  # the types, for mypy and editors: the same objects as below
    from worker import (
        AudioMessage,
        DocumentMessage,
        ImageMessage,
        Interactive,
        InteractiveMessage,
        InvalidMessage,
        Language,
        Media,
        Message,
        Payload,
        Priority,
        PriorityName,
        StoreFull,
        Template,
        TemplateMessage,
        Text,
        TextMessage,
        Unavailable,
        WorkerError,
        enqueue,
        enqueue_async,
        enqueue_many,
        enqueue_many_async,
    )
else:
    AudioMessage = _worker.AudioMessage
    DocumentMessage = _worker.DocumentMessage
    ImageMessage = _worker.ImageMessage
    Interactive = _worker.Interactive
    InteractiveMessage = _worker.InteractiveMessage
    InvalidMessage = _worker.InvalidMessage
    Language = _worker.Language
    Media = _worker.Media
    Message = _worker.Message
    Payload = _worker.Payload
    Priority = _worker.Priority
    PriorityName = _worker.PriorityName
    StoreFull = _worker.StoreFull
    Template = _worker.Template
    TemplateMessage = _worker.TemplateMessage
    Text = _worker.Text
    TextMessage = _worker.TextMessage
    Unavailable = _worker.Unavailable
    WorkerError = _worker.WorkerError
    enqueue = _worker.enqueue
    enqueue_async = _worker.enqueue_async
    enqueue_many = _worker.enqueue_many
    enqueue_many_async = _worker.enqueue_many_async

__all__ = [
    "AudioMessage",
    "DocumentMessage",
    "ImageMessage",
    "Interactive",
    "InteractiveMessage",
    "InvalidMessage",
    "Language",
    "Media",
    "Message",
    "Payload",
    "Priority",
    "PriorityName",
    "StoreFull",
    "Template",
    "TemplateMessage",
    "Text",
    "TextMessage",
    "Unavailable",
    "WorkerError",
    "enqueue",
    "enqueue_async",
    "enqueue_many",
    "enqueue_many_async",
]
