"""The demo's eighth scene: WhatsApp's own limits, as msgworker meets them. One recipient paced
while the account's other recipients go at full rate; a paused template's jobs held without a
Gateway call, then sent once each when Meta reinstates it (the sandbox posts its review)."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, Protocol

from worker.dev.stage import say, wait_until
from worker.service.runtime import Runtime
from worker.store.states import JobState

# WhatsApp's pair rate limit, shortened for the demo on both sides (WhatsApp's is about 6 s).
DEMO_PAIR_INTERVAL_S = 2
PAIRED = "905327777777"  # the one recipient the scene sends three messages to
SALE = ("spring_sale", "tr")  # the template WhatsApp pauses
PAIR_RATE_LIMIT = 131056  # WhatsApp's error for a recipient sent to too fast


class Stage(Protocol):
    """What the scene uses of the demo: its runtime, jobs and sandbox."""

    runtime: Runtime
    ids: list[str]

    def enqueue(self, label: str, count: int, account: str | None = None) -> list[str]: ...

    def wait_states(
        self, ids: list[str], *, what: str, states: frozenset[JobState] = ...
    ) -> None: ...

    def admin(self, path: str, body: dict[str, Any]) -> None: ...

    def messages(self) -> list[dict[str, Any]]: ...


def template_of(message: dict[str, Any]) -> str | None:
    """The template name a message the sandbox accepted used, None for free-form."""
    template = message["body"].get("template")
    return template.get("name") if isinstance(template, dict) else None


def _template_held(demo: Stage) -> bool:
    return any(hold.name == SALE[0] for hold in demo.runtime.templates.held("default"))


def show_whatsapp(demo: Stage) -> None:
    say(
        "8. WhatsApp's own limits: one recipient paced, the account's others at full rate; "
        "a paused template held without a call"
    )
    # WhatsApp's pair limit from here on (a halt's probe, earlier, carries a held job's
    # payload: a real Gateway never sends it, the sandbox would count it against the pair).
    demo.admin("/sandbox/config", {"pair_interval_s": DEMO_PAIR_INTERVAL_S})
    paired = demo.runtime.producer.enqueue_many(
        [{"to": PAIRED, "type": "text", "text": {"body": f"one number #{n}"}} for n in range(3)]
    )
    others = demo.enqueue("order update", 10)
    demo.ids += paired
    sent = frozenset({JobState.SENT})
    demo.wait_states([*paired, *others], what="the paced pair", states=sent)
    log = demo.messages()
    times = sorted(float(m["at"]) for m in log if m["to"] == PAIRED)
    gaps = ", ".join(f"{later - earlier:.1f}" for earlier, later in itertools.pairwise(times))
    refused = sum(1 for m in log if m["to"] == PAIRED and m["meta_error"] == PAIR_RATE_LIMIT)
    say(
        f"   3 to one number accepted {gaps} s apart (PAIR_INTERVAL_S {DEMO_PAIR_INTERVAL_S}), "
        f"the 10 others meanwhile; its answers 131056: {refused}"
    )
    name, language = SALE
    demo.admin("/sandbox/config", {"paused_templates": [f"{name}:{language}"]})
    sale = {"type": "template", "template": {"name": name, "language": {"code": language}}}
    first = demo.runtime.producer.enqueue({**sale, "to": "905327000001"})
    wait_until(lambda: _template_held(demo), what="the template hold", timeout_s=30)
    held = demo.runtime.producer.enqueue_many(
        [{**sale, "to": f"90532700000{n}"} for n in range(2, 5)]
    )
    welcome = {"type": "template", "template": {"name": "welcome", "language": {"code": "tr"}}}
    other = demo.runtime.producer.enqueue({**welcome, "to": "905327000009"})
    sale_jobs = [first, *held]
    demo.ids += [*sale_jobs, other]
    demo.wait_states(held, what="the held template's jobs", states=frozenset({JobState.HELD}))
    demo.wait_states([other], what="the other template", states=sent)
    calls = Counter(m["to"] for m in demo.messages() if template_of(m) == name)
    say(
        f"   {name} ({language}) paused: its first message failed 132015, the template is "
        f"held for the account; {len(held)} more held with no Gateway call "
        f"({sum(calls.values())} call in all); another template sent meanwhile"
    )
    demo.admin(
        "/sandbox/template_event", {"event": "REINSTATED", "name": name, "language": language}
    )
    demo.wait_states(sale_jobs, what="the released jobs", states=sent)
    accepted = Counter(
        m["to"] for m in demo.messages() if template_of(m) == name and not m["meta_error"]
    )
    say(
        f"   Meta reinstates it (its webhook): the {len(sale_jobs)} jobs sent, "
        f"{max(accepted.values())} time each"
    )
