"""The msgworker Grafana dashboard as code: writes deploy/grafana/msgworker.json.

    ./run python deploy/grafana/dashboard.py            # rewrite the JSON
    ./run python deploy/grafana/dashboard.py --check    # exit 1 when the JSON is not this output

Built with Grafana's own grafana-foundation-sdk (a dev dependency), whose builders follow
Grafana's dashboard schema. The JSON is committed for Grafana's provisioning and for people who
import it by hand; tests/deploy/test_observability_config.py fails when it differs from this
script's output, so edit this file, never the JSON.

Variables: the data source, the scrape jobs (any names: compose's "msgworker" and "msgworker-serve",
the ServiceMonitors' "msgworker-metrics" and "msgworker-serve"; found through msgworker_build_info,
which every worker and msgworker serve export; the delivery panels read serve's series) and the
account (offered from the workers' halt gauges and serve's delivery statuses, so with either job
alone; it filters every series with an `account` label: sends, Gateway answers, rate-limit waits,
alerts, halts, breakers, held jobs, delivery statuses). "All" matches everything, series without
the label included. The queue, schedule and dead letters are the deployment's, not an account's:
the time to drain compares the whole queue with every account's sends.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    prometheus,
    stat,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run by path: deploy/ importable
from generated import write_or_check

OUTPUT = Path(__file__).with_name("msgworker.json")

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Label matchers every query carries: the chosen scrape jobs, and for per-account series the
# chosen accounts.
J = 'job=~"$job"'
JA = f'{J}, account=~"$account"'
# Where the account variable finds the accounts: the workers export msgworker_halted for every
# configured account, serve its delivery statuses per account (its only per-account series), so
# the accounts are offered whichever of the jobs is chosen.
ACCOUNTS = '__name__=~"msgworker_halted|msgworker_delivery_statuses_total"'
SENT_RATE_5M = f'sum(rate(msgworker_jobs_total{{{J}, outcome="sent"}}[5m]))'
DEPTH = f"max(msgworker_queue_depth{{{J}}})"
DRAIN = f"({DEPTH} / ({SENT_RATE_5M} > 0)) or ({DEPTH} == 0)"
ANSWERS_RATE = f"sum(rate(msgworker_api_responses_total{{{JA}}}[$__rate_interval]))"
RATE_LIMITED = (
    f'rate(msgworker_api_responses_total{{{JA}, code="RATE_001"}}[$__rate_interval]) '
    f'or rate(msgworker_api_responses_total{{{JA}, status="429"}}[$__rate_interval])'
)


def query(expr: str, legend: str, ref: str, *, instant: bool = False) -> prometheus.Dataquery:
    built = (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .editor_mode(prometheus_models.QueryEditorMode.CODE)
        .datasource(DATASOURCE)
    )
    return built.instant() if instant else built.range()


def steps(*pairs: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in pairs])
    )


def fixed(color: str) -> list[models.DynamicConfigValue]:
    return [models.DynamicConfigValue(id_val="color", value={"fixedColor": color, "mode": "fixed"})]


def on_off(on_text: str) -> list[models.ValueMapping]:
    return [
        models.ValueMap(
            options={
                "0": models.ValueMappingResult(text="OK", color="green", index=0),
                "1": models.ValueMappingResult(text=on_text, color="red", index=1),
            }
        )
    ]


def place(h: int, w: int, x: int, y: int) -> models.GridPos:
    return models.GridPos(h=h, w=w, x=x, y=y)


def stat_panel(panel_id: int, title: str, description: str, pos: models.GridPos) -> stat.Panel:
    return (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(pos)
        .unit("short")
        .color_scheme(dashboard.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .text_mode(common_models.BigValueTextMode.VALUE_AND_NAME)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def series_panel(
    panel_id: int, title: str, description: str, pos: models.GridPos, unit: str
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(pos)
        .unit(unit)
        .min(0)
        .fill_opacity(10)
        .show_points(common_models.VisibilityMode.NEVER)
        .color_scheme(dashboard.FieldColor().mode(models.FieldColorModeId.PALETTE_CLASSIC))
        .legend(
            common.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
    )


def stacked(panel: timeseries.Panel) -> timeseries.Panel:
    return panel.fill_opacity(70).stacking(
        common.StackingConfig().mode(common_models.StackingMode.NORMAL).group("A")
    )


def red_line(panel: timeseries.Panel, at: float) -> timeseries.Panel:
    return panel.thresholds(steps((None, "green"), (at, "red"))).thresholds_style(
        common.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.LINE)
    )


def variables() -> list[dashboard.DatasourceVariable | dashboard.QueryVariable]:
    every = models.VariableOption(selected=True, text="All", value="$__all")
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        dashboard.QueryVariable("job")
        .label("Scrape job")
        .datasource(DATASOURCE)
        .query("label_values(msgworker_build_info, job)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(every),
        dashboard.QueryVariable("account")
        .label("Account")
        .datasource(DATASOURCE)
        .query(f"label_values({{{ACCOUNTS}, {J}}}, account)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(every),
    ]


def top_row() -> list[stat.Panel]:
    workers = (
        stat_panel(
            1,
            "Workers scraped / Redis reachable",
            "How many msgworker workers Prometheus scrapes right now (series of "
            "msgworker_build_info, whatever the scrape job is called). 0 means nothing is "
            "sending: start or restart the workers (`msgworker worker`), then check the "
            "Prometheus targets page. Alert: MsgworkerNoWorkerScraped. The second figure is 1 "
            "while the workers can read the shared state in Redis; 0 means Redis is unreachable: "
            "sending stops and the state gauges are blank until it is back. The third is 1 "
            "while Redis has the replicas REDIS_MIN_REPLICAS asks for; 0 means some are "
            "missing and sending pauses until they are back (docs/high-availability.md). "
            "Alert: MsgworkerRedisReplicasMissing.",
            place(5, 4, 0, 0),
        )
        .with_target(
            query(
                f'count(msgworker_build_info{{{J}, component="worker"}}) or vector(0)',
                "workers up",
                "A",
            )
        )
        .with_target(query(f"min(msgworker_redis_up{{{J}}})", "Redis reachable (1 = yes)", "B"))
        .with_target(
            query(
                f"1 - clamp_max(max(msgworker_redis_replicas_missing{{{J}}}), 1)",
                "Redis replicas enough (1 = yes)",
                "C",
            )
        )
        .thresholds(steps((None, "red"), (1, "green")))
        .no_value("0")
    )
    halted = (
        stat_panel(
            2,
            "Halted (per account)",
            "OK: the account sends. HALTED: all sending for the account is stopped (the Gateway "
            "refused the credentials: AUTH_001/002/003, WABA_001, BILL_002, or an operator ran "
            "`msgworker halt`). Jobs wait, nothing is lost. `msgworker status` shows code and "
            "reason; once credentials are rotated/fixed run `msgworker resume`. "
            "Alert: MsgworkerHalted.",
            place(5, 5, 4, 0),
        )
        .with_target(query(f"max by (account) (msgworker_halted{{{JA}}})", "{{account}}", "A"))
        .mappings(on_off("HALTED"))
        .thresholds(steps((None, "green"), (1, "red")))
    )
    breaker = (
        stat_panel(
            3,
            "Billing breaker (per account)",
            "OK: billing is fine. OPEN: the Gateway answered BILL_001 (prepaid balance used up); "
            "the account's jobs are parked in the DLQ as BILL_001 without calling the Gateway "
            "until a probe succeeds. Top up the balance, then `msgworker dlq replay --code "
            "BILL_001`. Alert: MsgworkerBillingBreakerOpen.",
            place(5, 5, 9, 0),
        )
        .with_target(
            query(f"max by (account) (msgworker_billing_breaker_open{{{JA}}})", "{{account}}", "A")
        )
        .mappings(on_off("OPEN"))
        .thresholds(steps((None, "green"), (1, "red")))
    )
    drain = (
        stat_panel(
            4,
            "Time to drain the queue",
            "Queue depth (jobs due now) divided by the send rate of the last 5 minutes: how long "
            "the current backlog takes at the current pace. 0 when the queue is empty; 'not "
            "draining' when jobs are due but nothing was sent for 5 minutes: look at the halt and "
            "breaker panels, Gateway answers and the workers. Alert: MsgworkerQueueNotDraining.",
            place(5, 5, 14, 0),
        )
        .with_target(query(DRAIN, "time to drain", "A"))
        .unit("s")
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .thresholds(steps((None, "green"), (600, "yellow"), (3600, "red")))
        .no_value("not draining")
    )
    dlq_total = (
        stat_panel(
            5,
            "DLQ total",
            "Jobs parked in the dead-letter queue, all codes. Parked jobs are never retried by "
            "themselves. A few permanent errors (GW_001, validation) are normal; growth is not: "
            "see 'DLQ size by code', then `msgworker dlq list --code <CODE>`. "
            "Alert: MsgworkerDLQGrowing.",
            place(5, 5, 19, 0),
        )
        .with_target(
            query(
                f"sum(max by (code) (msgworker_dlq_jobs{{{J}}})) or vector(0)", "parked jobs", "A"
            )
        )
        .color_mode(common_models.BigValueColorMode.VALUE)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .thresholds(steps((None, "green"), (1, "yellow")))
    )
    return [workers, halted, breaker, drain, dlq_total]


def traffic() -> list[timeseries.Panel]:
    outcomes = (
        series_panel(
            6,
            "Sends by outcome",
            "What deliveries came to, per second, summed over workers: sent (delivered), "
            "rescheduled (429, waits for the rate limit), retried (5xx/timeouts, backing off), "
            "parked (to the DLQ), halted (stopped by a halt), duplicate (already sent, dropped). "
            "'enqueued' is what producers add. Sent well below enqueued for long means a growing "
            "backlog; many parked means the DLQ grows.",
            place(9, 12, 0, 5),
            "ops",
        )
        .with_target(
            query(
                f"sum by (outcome) (rate(msgworker_jobs_total{{{JA}}}[$__rate_interval]))",
                "{{outcome}}",
                "A",
            )
        )
        .with_target(
            query(f"max(rate(msgworker_enqueued_total{{{J}}}[$__rate_interval]))", "enqueued", "B")
        )
    )
    for name, color in (
        ("sent", "green"),
        ("rescheduled", "yellow"),
        ("retried", "orange"),
        ("parked", "red"),
        ("halted", "dark-red"),
        ("duplicate", "blue"),
        ("enqueued", "text"),
    ):
        outcomes = outcomes.override_by_name(name, fixed(color))
    answers = (
        stacked(
            series_panel(
                7,
                "Gateway answers by code (stacked)",
                "Every Gateway answer per second, stacked by code: OK is success; RATE_001 = 429 "
                "rate limit; BILL_001 = 402 balance; AUTH_00x/WABA_001 = credentials (halt); "
                "HTTP_5xx, TIMEOUT, CONNECTION, WORKER_LOST = Gateway or network trouble "
                "(retried). A band other than OK growing tells which runbook to open.",
                place(9, 12, 12, 5),
                "reqps",
            )
        )
        .with_target(
            query(
                f"sum by (code) (rate(msgworker_api_responses_total{{{JA}}}[$__rate_interval]))",
                "{{code}}",
                "A",
            )
        )
        .override_by_name("OK", fixed("green"))
        .override_by_name("RATE_001", fixed("yellow"))
    )
    rate_limited = red_line(
        series_panel(
            8,
            "429 share (rate limited)",
            "Share of Gateway answers that were 429 / RATE_001. The shared rate limiter should "
            "keep this near 0; above 2% (red line) another client probably shares the API key or "
            "the account limit was lowered: set MSGWORKER_RATE_PER_SEC / _PER_MIN to the real "
            "limits. Jobs are rescheduled, not lost. Alert: MsgworkerRateLimited429High.",
            place(8, 8, 0, 14),
            "percentunit",
        ),
        0.02,
    ).with_target(
        query(
            f"(sum({RATE_LIMITED}) or vector(0)) / ({ANSWERS_RATE} > 0)",
            "429 share",
            "A",
        )
    )
    errors = red_line(
        series_panel(
            9,
            "Gateway errors share (5xx and transport)",
            "Share of Gateway answers that were HTTP 5xx or transport failures (TIMEOUT, "
            "CONNECTION, WORKER_LOST). Those jobs back off and retry, then park as "
            "retries_exhausted. Above 10% (red line): check the Gateway's status and our network; "
            "after recovery replay with `msgworker dlq replay --code <CODE>`. "
            "Alert: MsgworkerGateway5xxHigh.",
            place(8, 8, 8, 14),
            "percentunit",
        ),
        0.1,
    ).with_target(
        query(
            f'(sum(rate(msgworker_api_responses_total{{{JA}, status=~"5..|none"}}'
            f"[$__rate_interval])) or vector(0)) / ({ANSWERS_RATE} > 0)",
            "5xx + transport share",
            "A",
        )
    )
    bucket = f"msgworker_send_duration_seconds_bucket{{{J}}}[$__rate_interval]"
    latency = series_panel(
        10,
        "Send latency p50 / p95 / p99",
        "Time of one Gateway call (answer or failure), from the msgworker_send_duration_seconds "
        "histogram over all workers. p99 near HTTP_TIMEOUT_S (10 s) means calls time out: expect "
        "TIMEOUT answers and retries. A slow Gateway also lowers throughput. 'Arrival': how "
        "long after its rate-limit slot a call reached the Gateway (msgworker_call_arrival_seconds"
        "), where the limiter places it; a few ms is workers keeping up with their slots, tens of "
        "ms workers short of CPU (the account then uses less of its limit).",
        place(8, 8, 16, 14),
        "s",
    )
    for ref, quantile in (("A", "0.50"), ("B", "0.95"), ("C", "0.99")):
        latency = latency.with_target(
            query(
                f"histogram_quantile({quantile}, sum by (le) (rate({bucket})))",
                f"p{quantile[2:]}",
                ref,
            )
        )
    latency = (
        latency.with_target(
            query(
                f"sum(rate(msgworker_send_duration_seconds_sum{{{J}}}[$__rate_interval])) / "
                f"(sum(rate(msgworker_send_duration_seconds_count{{{J}}}[$__rate_interval])) > 0)",
                "mean",
                "D",
            )
        )
        .with_target(
            query(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(msgworker_call_arrival_seconds_bucket{{{J}}}[$__rate_interval])))",
                "arrival p99",
                "E",
            )
        )
        .with_target(
            query(
                f"sum(rate(msgworker_call_arrival_seconds_sum{{{J}}}[$__rate_interval])) / "
                f"(sum(rate(msgworker_call_arrival_seconds_count{{{J}}}[$__rate_interval])) > 0)",
                "arrival mean",
                "F",
            )
        )
    )
    return [outcomes, answers, rate_limited, errors, latency]


def backlog() -> list[timeseries.Panel | bargauge.Panel]:
    depth = (
        series_panel(
            11,
            "Queue depth and time to drain",
            "Left axis: jobs due now and not yet sent (read from Redis, same on every worker). "
            "Right axis: depth divided by the send rate of the last 5 minutes. A depth that rises "
            "while 'time to drain' disappears means nothing is sent: check halts, the breaker, "
            "Gateway answers and the workers. Alert: MsgworkerQueueNotDraining.",
            place(8, 12, 0, 22),
            "short",
        )
        .with_target(query(DEPTH, "queue depth", "A"))
        .with_target(query(DRAIN, "time to drain", "B"))
        .override_by_name(
            "time to drain",
            [
                models.DynamicConfigValue(id_val="unit", value="s"),
                models.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
            ],
        )
    )
    waiting = (
        series_panel(
            12,
            "Scheduled, in flight and held",
            "Scheduled: jobs waiting for a later time (send_at, reschedules after 429, backoffs) - "
            "normal. In flight: being sent right now. Held: jobs of a halted account waiting for "
            "`msgworker resume` (per account). Held above 0 with no halt shown is a bug to report.",
            place(8, 12, 12, 22),
            "short",
        )
        .with_target(query(f"max(msgworker_scheduled_jobs{{{J}}})", "scheduled", "A"))
        .with_target(query(f"max(msgworker_in_flight_jobs{{{J}}})", "in flight", "B"))
        .with_target(
            query(f"max by (account) (msgworker_held_jobs{{{JA}}})", "held ({{account}})", "C")
        )
    )
    dlq = stacked(
        series_panel(
            13,
            "DLQ size by code",
            "Dead-letter queue over time, stacked by the code that parked the jobs. BILL_001: top "
            "up, then `msgworker dlq replay --code BILL_001`. HTTP_5xx/TIMEOUT/CONNECTION: retries "
            "exhausted during a Gateway outage, replay once it recovers. "
            "GW_001/validation/EXPIRED: permanent, fix the producer; "
            "`msgworker dlq purge --code <CODE> --yes` when handled.",
            place(8, 12, 0, 30),
            "short",
        )
    ).with_target(query(f"max by (code) (msgworker_dlq_jobs{{{J}}})", "{{code}}", "A"))
    dlq_now = (
        bargauge.Panel()
        .id(14)
        .title("DLQ by code now")
        .description(
            "Dead letters per code right now, largest first. Inspect one with "
            "`msgworker dlq list --code <CODE> --limit 20` and `msgworker dlq show <ID>`."
        )
        .datasource(DATASOURCE)
        .grid_pos(place(8, 12, 12, 30))
        .unit("short")
        .min(0)
        .color_scheme(dashboard.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .thresholds(steps((None, "green"), (1, "orange")))
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .value_mode(common_models.BarGaugeValueMode.COLOR)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .show_unfilled(True)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(
            query(
                f"sort_desc(max by (code) (msgworker_dlq_jobs{{{J}}}))",
                "{{code}}",
                "A",
                instant=True,
            )
        )
    )
    return [depth, waiting, dlq, dlq_now]


def alerts_and_waits() -> list[timeseries.Panel]:
    raised = (
        series_panel(
            15,
            "Alerts raised by kind",
            "Alerts the workers themselves posted (webhook / Alertmanager: MsgworkerHalt, "
            "MsgworkerBilling, MsgworkerRetriesExhausted), counted per interval. halt: see "
            "'Halted'; billing: see 'Billing breaker'; retries_exhausted: jobs parked after "
            "MAX_ATTEMPTS, see 'Gateway errors share' and 'DLQ size by code'. One alert per "
            "incident, not per job.",
            place(8, 12, 0, 38),
            "short",
        )
        .draw_style(common_models.GraphDrawStyle.BARS)
        .fill_opacity(70)
        .decimals(0)
        .with_target(
            query(
                f"sum by (kind) (increase(msgworker_alerts_total{{{JA}}}[$__rate_interval]))",
                "{{kind}}",
                "A",
            )
        )
    )
    waits = series_panel(
        16,
        "Rate-limit wait",
        "Seconds per second that deliveries spent waiting for the shared rate limiter or a 429 "
        "cooldown, summed over workers (about: how many deliveries wait at any moment). High "
        "while the 429 share is low means we send at the account's limit: to go faster, raise "
        "the limit with the Gateway, not the worker count.",
        place(8, 12, 12, 38),
        "short",
    ).with_target(
        query(
            f"sum by (account) "
            f"(rate(msgworker_rate_limit_wait_seconds_total{{{JA}}}[$__rate_interval]))",
            "{{account}}",
            "A",
        )
    )
    return [raised, waits]


def delivery_shares() -> list[timeseries.Panel]:
    """What WhatsApp did with what the Gateway accepted (from its webhooks: counted by serve, and
    by the workers for statuses that came before their send was recorded; summed over both)."""
    accepted = f'sum(rate(msgworker_jobs_total{{{JA},outcome="sent"}}[$__rate_interval]))'
    statuses = "msgworker_delivery_statuses_total"
    shares = series_panel(
        17,
        "Delivered and read share",
        "Of the messages the Gateway accepted (sent), the share WhatsApp reported delivered and "
        "read (status webhooks through msgworker serve; those that came before the send was "
        "recorded are counted by the worker). A delivered share falling while sends "
        "go on means accepted is not delivered: see 'Delivery failures by code'.",
        place(8, 12, 0, 46),
        "percentunit",
    )
    for ref, status in (("A", "delivered"), ("B", "read")):
        count = f'sum(rate({statuses}{{{JA},status="{status}"}}[$__rate_interval]))'
        shares = shares.with_target(query(f"{count} / {accepted}", status, ref))
    failures = stacked(
        series_panel(
            18,
            "Delivery failures by code",
            "Failed deliveries per second by WhatsApp error code (WA_131026 undeliverable, "
            "WA_131047 re-engagement window, WA_131049 marketing limit; OTHER for the rest). "
            "Parked as undelivered by default: `msgworker dlq replay --code WA_<code>`.",
            place(8, 12, 12, 46),
            "reqps",
        )
    ).with_target(
        query(
            f"sum by (code) (rate(msgworker_delivery_failures_total{{{JA}}}[$__rate_interval]))",
            "{{code}}",
            "A",
        )
    )
    return [shares, failures]


def delivery_latency() -> list[timeseries.Panel]:
    bucket = f"msgworker_delivery_seconds_bucket{{{J}}}[$__rate_interval]"
    latency = series_panel(
        19,
        "Acceptance to delivery",
        "Seconds from the Gateway accepting a message to WhatsApp reporting it delivered (p50, "
        "p99). Minutes here usually mean recipients offline, not a problem of ours.",
        place(8, 12, 0, 54),
        "s",
    )
    for ref, quantile in (("A", "0.5"), ("B", "0.99")):
        expr = f"histogram_quantile({quantile}, sum by (le) (rate({bucket})))"
        latency = latency.with_target(query(expr, f"p{quantile[2:]}", ref))
    hooks = stacked(
        series_panel(
            20,
            "Webhook requests by result",
            "POST /webhooks/gateway by result: ok, unmatched (no job has the wamid yet: kept 60 s "
            "in case the send is recorded late, for 10,000 wamids at most), out_of_order (a failed "
            "after delivered: ignored; forged or replayed?), unauthorized (wrong secret), "
            "bad_request, too_large, unavailable (Redis did not answer: the Gateway sends it "
            "again).",
            place(8, 12, 12, 54),
            "reqps",
        )
    ).with_target(
        query(
            f"sum by (result) (rate(msgworker_webhook_requests_total{{{J}}}[$__rate_interval]))",
            "{{result}}",
            "A",
        )
    )
    return [latency, hooks]


def per_account() -> list[timeseries.Panel]:
    """Each account on its own line: one brand's trouble shows as its line, not as a dent in a
    sum (the alerts MsgworkerHalted and MsgworkerRateLimited429High fire per account too)."""
    sends = series_panel(
        21,
        "Sends per account",
        "Messages the Gateway accepted per second, one line per account. An account at its "
        "limit stays flat at it (see 'Rate-limit wait'); a line at 0 while others send: is the "
        "account halted, its breaker open, or has it nothing due? `msgworker status` shows "
        "each account's halt, breaker, held jobs and limits.",
        place(8, 12, 0, 62),
        "ops",
    ).with_target(
        query(
            f'sum by (account) (rate(msgworker_jobs_total{{{JA}, outcome="sent"}}'
            f"[$__rate_interval]))",
            "{{account}}",
            "A",
        )
    )
    all_answers = (
        f"sum by (account) (rate(msgworker_api_responses_total{{{JA}}}[$__rate_interval]))"
    )
    rate_limited = red_line(
        series_panel(
            22,
            "429 share per account",
            "Share of each account's Gateway answers that were 429 / RATE_001. Every account has "
            "its own key and limits: above 2% (red line) for one account, another client shares "
            "its key or its limit was lowered; set its rate_per_sec / rate_per_min in the "
            "accounts file. Alert: MsgworkerRateLimited429High (per account).",
            place(8, 12, 12, 62),
            "percentunit",
        ),
        0.02,
    ).with_target(
        query(
            f"(sum by (account) ({RATE_LIMITED}) or 0 * {all_answers}) / ({all_answers} > 0)",
            "{{account}}",
            "A",
        )
    )
    bulk_paused = series_panel(
        26,
        "Bulk lane paused per account",
        "1 while the account's bulk jobs are not dispatched: WhatsApp failed one of its messages "
        "with 131048 (spam rate limit) or 130429 (Cloud API throughput), so Meta doubts the "
        "sender. High and normal jobs go on; the pause ends by itself after STANDING_PAUSE_S. "
        "Check the number's quality rating. Alert: MsgworkerStandingAtRisk.",
        place(8, 12, 12, 78),
        "none",
    ).with_target(query(f"max by (account) (msgworker_bulk_paused{{{JA}}})", "{{account}}", "A"))
    return [sends, rate_limited, bulk_paused]


def templates() -> list[timeseries.Panel]:
    """WhatsApp's template holds: what is held, and the reviews that held or released them."""
    held = series_panel(
        23,
        "Templates held",
        "WhatsApp templates held per account and reason: paused (132015 or Meta's PAUSED), "
        "disabled (132016 or DISABLED), operator (`msgworker template hold`). Their jobs wait "
        "without calling the Gateway; `msgworker status` lists them. Meta's REINSTATED or "
        "`msgworker template release NAME --lang L` sends each held job once. Alerts: "
        "MsgworkerTemplatePaused, MsgworkerTemplateDisabled.",
        place(8, 12, 0, 70),
        "short",
    ).with_target(
        query(
            f"max by (account, reason) (msgworker_template_holds{{{JA}}})",
            "{{account}} {{reason}}",
            "A",
        )
    )
    reviews = stacked(
        series_panel(
            24,
            "Template reviews by result",
            "Meta's template reviews received by msgworker serve: held (PAUSED, DISABLED), "
            "released (APPROVED, REINSTATED), unknown_account (the review names a WhatsApp "
            "Business Account no account's waba_id is: set it in the accounts file).",
            place(8, 12, 12, 70),
            "short",
        )
    ).with_target(
        query(
            f"sum by (result) (increase(msgworker_template_events_total{{{J}}}[$__rate_interval]))",
            "{{result}}",
            "A",
        )
    )
    return [held, reviews]


def whatsapp() -> list[timeseries.Panel]:
    """What WhatsApp's own limits cost the sends (issue #30's rules)."""
    pair_waits = series_panel(
        25,
        "Pair waits",
        "Jobs sent back to the schedule per second to wait for their recipient's pair pacing "
        "(at most PAIR_BURST messages to one number per PAIR_INTERVAL_S, WhatsApp's 131056), "
        "per account. They take no slot: the account's other recipients go out meanwhile. "
        "Many waits mean many messages to the same people in a short time (a campaign sent "
        "twice, a loop in the app).",
        place(8, 12, 0, 78),
        "ops",
    ).with_target(
        query(
            f"sum by (account) (rate(msgworker_pair_waits_total{{{JA}}}[$__rate_interval]))",
            "{{account}}",
            "A",
        )
    )
    return [pair_waits]


def build() -> dict[str, object]:
    board = (
        dashboard.Dashboard("msgworker")
        .uid("msgworker")
        .description(
            "msgworker: WhatsApp sends through the Connexease Gateway - outcomes, Gateway "
            "answers, backlog, dead letters, halts and billing. Runbook: credentials "
            "rotated/fixed -> msgworker resume; balance topped up -> msgworker dlq replay "
            "--code BILL_001."
        )
        .tags(["msgworker", "whatsapp", "celery"])
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-6h", "now")
        .refresh("30s")
        .variables(variables())
    )
    panels = [*top_row(), *traffic(), *backlog(), *alerts_and_waits()]
    sections = [*delivery_shares(), *delivery_latency(), *per_account(), *templates(), *whatsapp()]
    for panel in [*panels, *sections]:
        board = board.with_panel(panel)
    encoded: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(OUTPUT, render(), argv, generator=__file__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
