"""What passes between Python and the Lua scripts, declared once: each entry script's KEYS, its
ARGV and its reply, by name.

Callers build KEYS and ARGV from these declarations (``Script.key_list``, ``Script.arguments``:
a name missing or unknown is an error, so no positional list is kept by hand) and read replies
by them (``Script.fields``). ``tests/store/test_protocol.py`` holds every ``.lua`` file to its
declaration: the ``KEYS[n]`` and ``ARGV[n]`` it reads, its loops over repeated arguments, the
length of the tables it returns. Lists both sides need (the job fields begin replies with) are
generated into the scripts as Lua constants (``lua_constants``), never copied.
"""

from __future__ import annotations

from worker.store.declaration import Script
from worker.store.keys import LANES, OWN_KEYS
from worker.store.states import SETTLED, JobState

# ------------------------------------------------------------------ the parts scripts share

# The rate limits a begin and the pump's scripts take (limits_from in ratelimit.lua).
LIMITS = (
    "sec_limit",
    "min_limit",
    "sec_window_ms",
    "min_window_ms",
    "max_wait_ms",
    "sec_ceiling",
    "min_ceiling",
    "own_limits",  # JSON {account: [sec, min, sec_ceiling, min_ceiling]}, '' for none
)
# The pair pacing a begin takes (pairs.lua): the interval in ms (0: off) and the burst.
PAIRS = ("pair_interval_ms", "pair_burst")
# What a settlement learns from an answer's X-RateLimit headers ('' where one was absent).
HEADERS = (
    "sec_window_ms",
    "min_window_ms",
    "sec_limit",
    "sec_remaining",
    "min_limit",
    "min_remaining",
)
# The job's fields a begin replies with after its verdict, detail and wait (except for stale and
# busy); begin.lua reads them by these names, as CLAIMED_FIELDS.
CLAIMED_FIELDS = (
    "account",
    "key",
    "calling",
    "expires_at",
    "message",
    "attempts",
    "reschedules",
    "enqueued_at",
    "priority",
)


def lua_constants(script: Script | None = None) -> str:
    """The Lua constants every script starts with, generated from the declarations here and the
    job's states (``states.py``): ``JOB_STATE.SENT`` is ``'sent'``, ``SETTLED_STATES[state]``
    whether a state is settled; no script spells a state itself. ``SCRIPT_KEYS`` names
    ``script``'s fixed KEYS in order (``named_keys`` in keys.lua makes a table of them)."""
    fields = ", ".join(f"'{name}'" for name in CLAIMED_FIELDS)
    begin_keys = ", ".join(f"'{name}'" for name in BEGIN_KEYS)
    script_keys = ", ".join(f"'{name}'" for name in (script.keys if script else ()))
    states = ", ".join(f"{state.name} = '{state.value}'" for state in JobState)
    settled = ", ".join(f"{state.value} = true" for state in sorted(SETTLED))
    return (
        f"local CLAIMED_FIELDS = {{{fields}}}\n"
        f"local BEGIN_KEYS = {{{begin_keys}}}\n"
        f"local SCRIPT_KEYS = {{{script_keys}}}\n"
        f"local JOB_STATE = {{{states}}}\n"
        f"local SETTLED_STATES = {{{settled}}}\n"
    )


# ------------------------------------------------------------------ a job's transitions

# A begin's keys, read by name (named_keys over the generated BEGIN_KEYS, in keys.lua): the
# job's own, its idempotency key's claim, the account's switches, holds, pairs and limiter
# (ratelimit.lua's names), the lane of the job's priority (a deferred job is scheduled there).
BEGIN_KEYS = (
    *OWN_KEYS,
    "claim",
    "leases",
    "halt",
    "breaker",
    "breaker_probe",
    "template_holds",
    "held",
    "template_held_jobs",
    "pairs",
    "limits",
    "sec_window",
    "min_window",
    "cooldown",
    "dispatched",
    "due",
    "scheduled_accounts",
)
BEGIN = Script(
    "begin_job",
    keys=BEGIN_KEYS,
    argv=(
        "id",
        "gen",
        "now",
        "lease_s",
        "execution",
        "probe_interval_s",
        "retention_s",
        "account",  # the job's account, key and priority, as its keys were named for them
        "key",
        "priority",
        *LIMITS,
        *PAIRS,
        "floor",  # '1': the benchmarks' floor what-if (no rate-limit slot); never the product's
    ),
    reply=("verdict", "detail", "wait_ms"),
    include=("ratelimit", "switches", "templates", "pairs", "begin"),
)
# Every settlement's first keys and arguments (settle.lua; the limiter's keys by its names, and
# the hash counting the answers of the settlement's second).
SETTLEMENT_KEYS = (
    "job",
    "history",
    "claim",
    "leases",
    "pairs",
    "limits",
    "sec_window",
    "min_window",
    "answers",
)
SETTLEMENT = (
    "id",
    "gen",
    "now",
    "execution",
    "event",
    "account",  # the job's account, key and priority, as its keys were named for them
    "key",
    "priority",
    *HEADERS,
    "arrival_ms",  # when the call reached the Gateway, in ms after its slot ('' for no call)
)
SENT = Script(
    "sent",
    keys=(
        *SETTLEMENT_KEYS,
        "idempotency",
        "ledger",
        "wamid",
        "early",
        "early_arrivals",
        "halt",
        "breaker",
        "breaker_probe",
        "cooldown",
        "exhausted",
        # what delivery.lua takes besides (for the statuses that came before the send)
        "template_holds",
        "template_held_jobs",
        "dead_letter",
        "dead_letter_index",
        "dead_letter_counts",
        "bulk_paused",
        "due",
        "scheduled_accounts",
    ),
    argv=(*SETTLEMENT, "wamid", "retention_s", "floor"),  # floor: as BEGIN's (no records)
    then=BEGIN,
    reply=("recorded", "breaker_closed", "exhausted_open", "early_applied"),
    include=(
        "answers",
        "ratelimit",
        "deadletters",
        "templates",
        "delivery",
        "switches",
        "pairs",
        "begin",
        "settle",
    ),
)
RETRY = Script(
    "retry",
    keys=(*SETTLEMENT_KEYS, "breaker_probe", "cooldown", "due", "scheduled_accounts"),
    argv=(*SETTLEMENT, "delay_s", "code", "count", "cooldown_until", "channel"),
    reply=("recorded",),
    include=("answers", "ratelimit", "switches", "pairs", "settle"),
)
PARK = Script(
    "park",
    keys=(
        *SETTLEMENT_KEYS,
        "dead_letter",
        "dead_letter_index",
        "dead_letter_counts",
        "breaker",
    ),
    argv=(*SETTLEMENT, "code", "reason", "record", "open_breaker", "channel"),
    reply=("recorded", "breaker_opened"),
    include=("answers", "ratelimit", "deadletters", "pairs", "settle"),
)
HOLD = Script(
    "hold",
    keys=(*SETTLEMENT_KEYS, "halt", "held"),
    argv=(*SETTLEMENT, "code", "halt", "channel"),
    reply=("recorded", "halt_set"),
    include=("answers", "ratelimit", "switches", "pairs", "settle"),
)
RECHECK = Script(
    "recheck",
    keys=(
        "job",
        "history",
        "claim",
        "leases",
        "halt",
        "held",
        "cooldown",
        "breaker",
        "breaker_probe",
        "sec_window",
        "min_window",
        "due",
        "scheduled_accounts",
        "pairs",
    ),
    argv=(
        "id",
        "gen",
        "now",
        "execution",
        "held_event",
        "wait_event",
        "probe_interval_s",
        "account",
    ),
    reply=("verdict", "wait_ms"),
    include=("ratelimit", "switches", "pairs"),
)

# ------------------------------------------------------------------ writing and pumping jobs

ENQUEUE = Script(
    "enqueue",
    keys=("batch", "enqueued_count", "scheduled_accounts"),
    each_key=("idempotency", "job", "history", "due"),
    argv=("now", "batch_key", "batch_keep_ms"),
    each=(
        "id",
        "account",
        "key",
        "message",
        "due_at",
        "expires_at",
        "state",
        "event",
        "priority",
        "template",  # templates.lua's job_template ('' for a message that is no template)
        "to",  # the recipient (message.to): what pair pacing goes by
    ),
    reply=("batch_seen",),
)
PLAN = Script(
    "plan",
    argv=("prefix", "now", "horizon_s", *LIMITS),
    include=("ratelimit",),
)
PROMOTE = Script(
    "promote",
    argv=(*PLAN.argv, "lease_s", "count_s", "room"),
    each=("account", "quota"),
    reply=("members", "runs", "paces", "addresses"),
    include=("ratelimit",),
)
SPLIT_SCHEDULE = Script(
    "split_schedule",
    keys=("legacy_due", "scheduled_accounts"),
    each_key=("job", "due"),
    each=("member", "account", "priority"),  # as read before; account '' for a job gone
    reply=("moved", "left"),
)

# ------------------------------------------------------------------ switches and incidents

HALT = Script("halt", keys=("halt",), argv=("channel", "account"), each=("field", "value"))
RESUME = Script(
    "resume",
    keys=(
        "halt",
        "halt_probe",
        "held",
        "scheduled_accounts",
        *(f"due_{lane}" for lane in LANES),  # the account's lanes (a held job goes back to its own)
    ),
    argv=("prefix", "account", "now", "event", "gateway_only"),  # prefix: the held jobs' keys
)
HOLD_TEMPLATE = Script(
    "hold_template", keys=("holds",), argv=("template", "hold"), include=("templates",)
)
RELEASE_TEMPLATE = Script(
    "release_template",
    keys=(
        "holds",
        "held_jobs",
        "scheduled_accounts",
        *(f"due_{lane}" for lane in LANES),  # the account's lanes (a held job goes back to its own)
    ),
    each_key=("job", "history"),
    argv=("account", "template", "now", "event", "lift"),
    each=("id",),
    reply=("lifted", "released", "left"),
)
INCIDENT_OPEN = Script("incident_open", keys=("incident",), each=("field", "value"))

# ------------------------------------------------------------------ dead letters and receipts

REPLAY = Script(
    "replay",
    keys=("dead_letter_index", "dead_letter_counts", "scheduled_accounts"),
    each_key=(
        "dead_letter",
        *OWN_KEYS,
        "breaker",
        "breaker_probe",
        *(f"due_{lane}" for lane in LANES),
    ),
    argv=("now", "start_offset_s", "interval_s", "retention_s", "event"),
    each=("id", "account", "key"),  # as read from the record before, '' where it named none
    reply=("replayed", "already_sent", "expired", "missing", "delivered"),
    include=("answers", "deadletters", "templates", "pairs", "delivery"),
)
PURGE = Script(
    "purge",
    keys=("dead_letter_index", "dead_letter_counts"),
    each_key=("dead_letter", *OWN_KEYS),
    argv=("retention_s", "forget", "parked_before"),  # parked_before: '' for any
    each=("id", "account", "key"),  # as read from the record before, '' where it named none
)
IMPORT = Script(
    "import",
    keys=("dead_letter_index", "dead_letter_counts"),
    each_key=("dead_letter", *OWN_KEYS),
    each=("id", "account", "key", "parked_at", "code", "record"),
    reply=("imported", "already_there", "job_not_parked"),
)
STATUSES = Script(
    "statuses",
    argv=("prefix", "now", "early_ms", "early_max", "early_cap"),
    each=("status",),
    include=("answers", "deadletters", "templates", "pairs", "delivery"),
)

SCRIPTS = (
    BEGIN,
    SENT,
    RETRY,
    PARK,
    HOLD,
    RECHECK,
    ENQUEUE,
    PLAN,
    PROMOTE,
    SPLIT_SCHEDULE,
    HALT,
    RESUME,
    HOLD_TEMPLATE,
    RELEASE_TEMPLATE,
    INCIDENT_OPEN,
    REPLAY,
    PURGE,
    IMPORT,
    STATUSES,
)
