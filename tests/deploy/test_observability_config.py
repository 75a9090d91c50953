"""The Grafana dashboard and Prometheus alert rules in deploy/: valid, and about real metrics."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.docs import RUNBOOK_PREFIX, RUNBOOKS, anchors
from worker.observe import build_info, metrics
from worker.observe.incidents import RUNBOOK_URLS, Alert, AlertKind, AlertStatus
from worker.observe.sinks import alertmanager_alert, alertname
from worker.observe.status import AccountState, Snapshot
from worker.store.switches import Breaker, Halt

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "msgworker.json"
GENERATOR = ROOT / "deploy" / "grafana" / "dashboard.py"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# What one worker's /metrics exports (as docs/observability.md documents them), sample names as
# PromQL sees them.
EXPORTED = frozenset(
    {
        "msgworker_api_responses_total",
        "msgworker_jobs_total",
        "msgworker_enqueued_total",
        "msgworker_send_duration_seconds_bucket",
        "msgworker_send_duration_seconds_sum",
        "msgworker_send_duration_seconds_count",
        "msgworker_call_arrival_seconds_bucket",
        "msgworker_call_arrival_seconds_sum",
        "msgworker_call_arrival_seconds_count",
        "msgworker_rate_limit_wait_seconds_total",
        "msgworker_pair_waits_total",
        "msgworker_alerts_total",
        "msgworker_dlq_jobs",
        "msgworker_queue_depth",
        "msgworker_scheduled_jobs",
        "msgworker_in_flight_jobs",
        "msgworker_held_jobs",
        "msgworker_halted",
        "msgworker_billing_breaker_open",
        "msgworker_template_holds",
        "msgworker_bulk_paused",
        "msgworker_redis_up",
        "msgworker_redis_replicas_missing",
        "msgworker_build_info",
    }
)
# What `msgworker serve` exports about delivery statuses (from the Gateway's webhooks).
SERVED = frozenset(
    {
        "msgworker_delivery_statuses_total",
        "msgworker_delivery_failures_total",
        "msgworker_webhook_requests_total",
        "msgworker_template_events_total",
        "msgworker_delivery_seconds_bucket",
        "msgworker_delivery_seconds_sum",
        "msgworker_delivery_seconds_count",
    }
)
# Prometheus' own scrape-health series.
ALLOWED = EXPORTED | SERVED | {"up"}

ALERT_NAMES = frozenset(
    {
        "MsgworkerHalted",
        "MsgworkerBillingBreakerOpen",
        "MsgworkerTemplatePaused",
        "MsgworkerTemplateDisabled",
        "MsgworkerTemplateReleaseUnfinished",
        "MsgworkerPairWaitsHigh",
        "MsgworkerDLQGrowing",
        "MsgworkerGateway5xxHigh",
        "MsgworkerRateLimited429High",
        "MsgworkerQueueNotDraining",
        "MsgworkerNoWorkerScraped",
        "MsgworkerRedisUnreachable",
        "MsgworkerRedisReplicasMissing",
        "MsgworkerDeliveryFailuresHigh",
        "MsgworkerStandingAtRisk",
    }
)

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}

# Words of PromQL that look like metric names but are not.
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "atan2", "inf", "nan"}
)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus (it ships promtool)")
    return found


def run_promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those folded inside rows."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in all_panels(dashboard) if panel["type"] != "row"]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in data_panels(dashboard) for target in panel["targets"]]


def as_promql(expr: str) -> str:
    """Grafana's interval variables ($__rate_interval, ${__interval}…) replaced by 5m."""
    return re.sub(r"\$\{?__\w+\}?", "5m", expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        is_call = text[match.end() :].lstrip().startswith("(")
        if not is_call and match.group() not in KEYWORDS:
            names.add(match.group())
    return names


def panel_titled(dashboard: dict[str, Any], *keywords: str) -> dict[str, Any]:
    found = [
        panel
        for panel in data_panels(dashboard)
        if all(word in panel["title"].lower() for word in keywords)
    ]
    assert found, f"no panel whose title has {keywords}"
    return found[0]


# The worker's own counters and histograms, and a snapshot that makes every shared-state gauge.
COUNTED = (
    metrics.API_RESPONSES,
    metrics.JOBS,
    metrics.SEND_DURATION,
    metrics.CALL_ARRIVAL,
    metrics.RATE_LIMIT_WAIT,
    metrics.PAIR_WAITS,
    metrics.ALERTS,
)
SNAPSHOT = Snapshot(
    queue="messages",
    ready=1,
    in_broker=2,
    scheduled=3,
    in_flight=4,
    enqueued=5,
    sends_per_s=8.0,
    dead_letters={"GW_001": 6},
    accounts={
        "default": AccountState(
            halt=Halt(code="AUTH_001", reason="test", since=0.0),
            breaker=Breaker(since=0.0, code="BILL_001", half_open=False),
            cooldown_until=None,
            held=7,
        )
    },
)
# What `msgworker serve` counts by account.
SERVED_BY_ACCOUNT = frozenset(
    {"msgworker_delivery_statuses_total", "msgworker_delivery_failures_total"}
)


def exported_by_worker() -> set[str]:
    """Sample names the worker's metrics produce, counters and histograms expanded."""
    names = set()
    for metric in COUNTED:
        names |= {metric._name + suffix for suffix in SUFFIXES[metric._type]}
    for family in metrics.StateCollector(lambda: SNAPSHOT).collect():
        names |= {sample.name for sample in family.samples}
    for family in build_info.BuildInfoCollector("worker").collect():
        names |= {sample.name for sample in family.samples}
    return names


def labelled_by_account() -> set[str]:
    """Sample names exported with an ``account`` label, by the worker and by serve."""
    names = set(SERVED_BY_ACCOUNT)
    for metric in COUNTED:
        if "account" in metric._labelnames:
            names |= {metric._name + suffix for suffix in SUFFIXES[metric._type]}
    for family in metrics.StateCollector(lambda: SNAPSHOT).collect():
        if any("account" in sample.labels for sample in family.samples):
            names |= {sample.name for sample in family.samples}
    return names


def test_dashboard_has_a_prometheus_datasource_variable(dashboard):
    """A `datasource` template variable of type datasource picks a Prometheus."""
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("msgworker_dashboard", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_is_the_generators_output():
    """msgworker.json is exactly what deploy/grafana/dashboard.py writes: edit the script, not the JSON."""
    assert DASHBOARD.read_text(encoding="utf-8") == load_generator().render()


@pytest.mark.processes
def test_generator_check_refuses_a_hand_edited_dashboard(tmp_path):
    """`dashboard.py --check` exits 0 on the committed JSON and 1 on a hand-edited copy."""
    generator = load_generator()
    clean = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, GENERATOR, "--check"], capture_output=True, text=True, check=False
    )
    assert clean.returncode == 0, clean.stderr
    edited = tmp_path / "msgworker.json"
    edited.write_text(generator.render().replace("Sends by outcome", "Sends"), encoding="utf-8")
    generator.OUTPUT = edited
    assert generator.main(["--check"]) == 1


def test_dashboard_variables_pick_datasource_job_and_account(dashboard):
    """Variables: the data source, the scrape job (any name, by msgworker_build_info) and the
    account, both multi-valued with an All that also matches series without the label."""
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "account"]
    assert "msgworker_build_info" in variables["job"]["query"]
    assert "account" in variables["account"]["query"]
    for name in ("job", "account"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["multi"] is True
        assert variables[name]["includeAll"] is True
        assert variables[name]["allValue"] == ".*"


def test_job_and_account_variables_find_the_worker_and_serve(dashboard):
    """`$job` comes from msgworker_build_info, which the worker and serve both export, and
    `$account` from a per-account series of each: either job chosen alone offers its accounts."""
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    job = re.fullmatch(r"label_values\((\w+), job\)", variables["job"]["query"])
    assert job, variables["job"]["query"]
    for component in ("worker", "serve"):
        [family] = build_info.BuildInfoCollector(component).collect()
        assert {sample.name for sample in family.samples} == {job[1]}
    account = re.fullmatch(
        r'label_values\(\{__name__=~"([\w|]+)", job=~"\$job"\}, account\)',
        variables["account"]["query"],
    )
    assert account, variables["account"]["query"]
    names = set(account[1].split("|"))
    assert names <= labelled_by_account()
    assert names & exported_by_worker()
    assert names & SERVED_BY_ACCOUNT


def test_every_query_follows_the_job_variable_and_names_no_job(dashboard):
    """Every selector in every query is filtered by $job, and no query names a job literally."""
    for expr in dashboard_exprs(dashboard):
        selectors = re.findall(r"(msgworker_\w+)(\{[^}]*\})?", expr)
        assert selectors, expr
        for name, matchers in selectors:
            assert 'job=~"$job"' in matchers, (name, expr)
        assert 'job="' not in expr, expr
        assert "up" not in metric_names(expr), expr


def test_per_account_series_follow_the_account_variable(dashboard):
    """Every series with an account label is filtered by $account, but for the time to drain,
    which compares the deployment's whole queue with every account's sends."""
    per_account = labelled_by_account()
    assert {"msgworker_jobs_total", "msgworker_api_responses_total"} <= per_account
    for expr in dashboard_exprs(dashboard):
        if "msgworker_queue_depth" in expr:
            continue
        for name, matchers in re.findall(r"(msgworker_\w+)(\{[^}]*\})?", expr):
            if name in per_account:
                assert 'account=~"$account"' in matchers, (name, expr)


def test_the_operator_sees_each_account_on_its_own_line(dashboard):
    """Sends and the 429 share each have a panel by account."""
    by_account = [
        panel["title"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "sum by (account)" in target["expr"] and target["legendFormat"] == "{{account}}"
    ]
    assert "Sends per account" in by_account
    assert "429 share per account" in by_account


def test_dashboard_schema_is_recent(dashboard):
    """The schema is one Grafana 10/11 imports without migrating."""
    assert dashboard["schemaVersion"] >= 39


def test_dashboard_has_identity_and_defaults(dashboard):
    """uid, title, tags, time range and refresh are set."""
    assert dashboard["uid"] == "msgworker"
    assert dashboard["title"]
    assert "msgworker" in dashboard["tags"]
    assert dashboard["time"]["from"].startswith("now-")
    assert dashboard["refresh"]


def test_panel_ids_are_unique(dashboard):
    """No two panels share an id."""
    ids = [panel["id"] for panel in all_panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_panels_do_not_overlap(dashboard):
    """Every panel has a gridPos inside 24 columns, and none overlaps another."""
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] >= 0
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                cells[x, y] = panel["title"]


def test_every_panel_and_target_uses_the_datasource_variable(dashboard):
    """Panels and their queries all read from the chosen data source."""
    for panel in data_panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_every_panel_tells_the_night_shift_what_it_means(dashboard):
    """Each panel has a description of a few sentences."""
    for panel in data_panels(dashboard):
        assert len(panel.get("description", "")) >= 80, panel["title"]


@pytest.mark.parametrize(
    "keywords",
    [
        ("sends", "outcome"),
        ("answers", "code"),
        ("429",),
        ("latency", "p50", "p95", "p99"),
        ("dlq", "code"),
        ("queue depth",),
        ("drain",),
        ("halted",),
        ("breaker",),
        ("alerts",),
        ("scheduled", "in flight"),
        ("rate-limit wait",),
    ],
    ids=" ".join,
)
def test_required_panel_exists(dashboard, keywords):
    """The panel the night shift looks for is there."""
    panel_titled(dashboard, *keywords)


def test_gateway_answers_are_stacked_by_code(dashboard):
    """Answers by code stack, so the bands add up to all answers."""
    panel = panel_titled(dashboard, "answers", "code")
    assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "by (code)" in panel["targets"][0]["expr"]


@pytest.mark.parametrize(("keyword", "on_text"), [("halted", "HALTED"), ("breaker", "OPEN")])
def test_state_stat_maps_zero_to_ok_and_one_to_alarm(dashboard, keyword, on_text):
    """Halt and breaker stats read OK in green, HALTED/OPEN in red."""
    panel = panel_titled(dashboard, keyword)
    assert panel["type"] == "stat"
    defaults = panel["fieldConfig"]["defaults"]
    texts = {
        value: (option["text"], option["color"])
        for mapping in defaults["mappings"]
        for value, option in mapping["options"].items()
    }
    assert texts == {"0": ("OK", "green"), "1": (on_text, "red")}
    steps = defaults["thresholds"]["steps"]
    assert steps[0]["color"] == "green"
    assert {"color": "red", "value": 1} in steps


def test_time_to_drain_guards_against_division_by_zero(dashboard):
    """Drain time divides by the sent rate only where it is positive."""
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            if "msgworker_queue_depth" in expr and "/" in expr:
                assert "clamp_min" in expr or re.search(r"\)\s*>\s*0\)", expr), expr


@pytest.mark.processes
def test_every_dashboard_expression_parses(dashboard, tmp_path):
    """promtool accepts every dashboard query as a recording rule."""
    rules = [
        {"record": f"dashboard:expr_{number}", "expr": as_promql(expr)}
        for number, expr in enumerate(dashboard_exprs(dashboard))
    ]
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", rules_file, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_expected_metrics_are_what_the_worker_exports():
    """The documented metric list is exactly what worker.observe.metrics produces."""
    exported = {name for name in exported_by_worker() if not name.endswith("_created")}
    assert exported == EXPORTED


def test_dashboard_uses_only_exported_metrics(dashboard):
    """No dashboard query names a metric the worker does not export."""
    for expr in dashboard_exprs(dashboard):
        assert metric_names(expr) <= ALLOWED, expr


def test_alert_rules_use_only_exported_metrics(alert_rules):
    """No alert rule names a metric the worker does not export."""
    for rule in alert_rules:
        assert metric_names(rule["expr"]) <= ALLOWED, rule["alert"]


def test_dashboard_charts_every_exported_metric(dashboard):
    """Every exported metric appears on some panel."""
    used = set().union(*(metric_names(expr) for expr in dashboard_exprs(dashboard)))
    assert used >= EXPORTED, sorted(EXPORTED - used)


def test_alert_names_are_the_agreed_ones(alert_rules):
    """The group `msgworker` holds exactly the agreed alerts."""
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    assert [group["name"] for group in groups] == ["msgworker"]
    assert {rule["alert"] for rule in alert_rules} == ALERT_NAMES


def test_alert_names_differ_from_those_the_workers_post():
    """Rule names never collide with the product's own Alertmanager alerts."""
    posted = {alertname(kind) for kind in AlertKind}
    assert posted == {"MsgworkerHalt", "MsgworkerBilling", "MsgworkerRetriesExhausted"}
    assert not ALERT_NAMES & posted


def test_every_alert_has_severity_and_runbook(alert_rules):
    """Each alert carries a severity and summary, description and runbook annotations."""
    for rule in alert_rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= rule["annotations"].keys(), rule["alert"]


def test_every_alert_links_a_runbook_section_that_exists(alert_rules):
    """Each rule's runbook_url is docs/runbooks.md#<anchor>, and that page has that heading."""
    sections = anchors(RUNBOOKS)
    for rule in alert_rules:
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), rule["alert"]
        assert url.removeprefix(RUNBOOK_PREFIX) in sections, (rule["alert"], url)


def test_every_workers_alert_links_a_runbook_section_that_exists():
    """Each kind of the workers' own alerts posts a runbook_url to a runbook section that exists."""
    sections = anchors(RUNBOOKS)
    assert set(RUNBOOK_URLS) == set(AlertKind)
    for kind in AlertKind:
        posted = alertmanager_alert(
            Alert(kind=kind, status=AlertStatus.FIRING, account="acme", summary="s")
        )
        url = posted["annotations"]["runbook_url"]
        assert url == RUNBOOK_URLS[kind]
        assert url.startswith(RUNBOOK_PREFIX), kind
        assert url.removeprefix(RUNBOOK_PREFIX) in sections, (kind, url)


def test_workers_alert_and_the_rule_it_silences_share_a_runbook(alert_rules):
    """The worker's alert that inhibits a rule links the same runbook section as that rule."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    rules = {rule["alert"]: rule for rule in alert_rules}
    kinds = {alertname(kind): kind for kind in AlertKind}
    for inhibit in config["inhibit_rules"]:
        [source] = inhibit["source_matchers"]
        [target] = inhibit["target_matchers"]
        kind = kinds[re.fullmatch(r'alertname="(\w+)"', source).group(1)]
        rule = rules[re.fullmatch(r'alertname="(\w+)"', target).group(1)]
        assert RUNBOOK_URLS[kind] == rule["annotations"]["runbook_url"], inhibit


def test_no_rule_depends_on_the_scrape_job_name(alert_rules):
    """No rule names a job or uses `up`: a ServiceMonitor's job name works as well as compose's."""
    for rule in alert_rules:
        assert not re.search(r"\bjob\b", rule["expr"]), rule["alert"]
        assert "up" not in metric_names(rule["expr"]), rule["alert"]


def test_build_info_is_one_with_the_package_version_and_the_component():
    """msgworker_build_info{version, component} is 1, labelled with the installed package's
    version and whether a worker or serve answers."""
    for component in ("worker", "serve"):
        [family] = build_info.BuildInfoCollector(component).collect()
        [sample] = family.samples
        assert sample.name == "msgworker_build_info"
        assert sample.value == 1
        assert sample.labels == {"version": build_info.package_version(), "component": component}
    assert build_info.package_version() != "unknown"


def test_inhibit_rules_pair_each_workers_alert_with_its_rule(alert_rules):
    """Each inhibit rule silences a rule's alert by the worker's alert for the same incident, matched
    on labels both really carry; the worker's alert always wins, never the other way round."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    rules = {rule["alert"]: rule for rule in alert_rules}
    pairs = {}
    for inhibit in config["inhibit_rules"]:
        [source] = inhibit["source_matchers"]
        [target] = inhibit["target_matchers"]
        source_name = re.fullmatch(r'alertname="(\w+)"', source).group(1)
        target_name = re.fullmatch(r'alertname="(\w+)"', target).group(1)
        pairs[source_name] = target_name
        kind = next(kind for kind in AlertKind if alertname(kind) == source_name)
        posted = alertmanager_alert(
            Alert(kind=kind, status=AlertStatus.FIRING, account="acme", summary="s", code="X")
        )["labels"]
        rule = rules[target_name]
        rule_labels = set(rule["labels"]) | set(
            re.search(r"by \(([^)]*)\)", rule["expr"]).group(1).replace(" ", "").split(",")
        )
        assert set(inhibit["equal"]) <= set(posted), inhibit
        assert set(inhibit["equal"]) <= rule_labels, inhibit
        assert "account" in inhibit["equal"], "one account's alert must not silence another's"
    assert pairs == {
        alertname(AlertKind.HALT): "MsgworkerHalted",
        alertname(AlertKind.BILLING): "MsgworkerBillingBreakerOpen",
    }


def test_operator_actions_are_in_the_runbooks(alert_rules):
    """Halt says resume after fixing credentials; billing says top up, then replay BILL_001."""
    runbooks = {rule["alert"]: rule["annotations"]["runbook"] for rule in alert_rules}
    assert "credentials rotated/fixed" in runbooks["MsgworkerHalted"]
    assert "msgworker resume" in runbooks["MsgworkerHalted"]
    assert "Top up" in runbooks["MsgworkerBillingBreakerOpen"]
    assert "msgworker dlq replay --code BILL_001" in runbooks["MsgworkerBillingBreakerOpen"]


def test_every_alert_is_unit_tested_firing_and_silent():
    """alerts_test.yml makes each alert fire and stay silent at least once."""
    tests = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert firing == ALERT_NAMES
    assert silent == ALERT_NAMES


@pytest.mark.processes
def test_alert_rules_pass_promtool_check(tmp_path):
    """promtool check rules accepts alerts.yml."""
    result = run_promtool("check", "rules", ALERTS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(ALERT_NAMES)} rules found" in result.stdout


@pytest.mark.processes
def test_alert_rule_unit_tests_pass(tmp_path):
    """promtool test rules passes alerts_test.yml, run from another directory."""
    result = run_promtool("test", "rules", ALERTS_TEST, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
