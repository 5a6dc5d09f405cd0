"""The alert rules, their promtool unit tests, the Alertmanager routes and the dashboard's
queries, checked with Prometheus's and Alertmanager's own tools (promtool, amtool)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from deploy_files import (
    ALERT_RULES,
    ALERT_TESTS,
    ALERTMANAGER_CONFIG,
    DASHBOARD,
    GRAFANA,
    OPERATIONS,
    PROMETHEUS_CONFIG,
    alert_rules,
    dashboard,
    dashboard_panels,
    dashboard_queries,
    github_anchors,
    load_yaml,
)

Tool = Callable[..., str]

#: The alerts the issue asks for (and a worker that cannot be scraped): renaming or dropping one
#: must be a decision, made here too.
EXPECTED_ALERTS = {
    "OrderwatchWorkerDown",
    "OrderwatchWorkerNotReady",
    "OrderwatchProcessingFailures",
    "OrderwatchInputExpired",
    "OrderwatchNoEventsProcessed",
    "OrderwatchConsumerLagGrowing",
    "OrderwatchBreachDetectionLagHigh",
    "OrderwatchAggregateInputsWaitingTooLong",
    "OrderwatchDeadLetters",
    "OrderwatchBreachesRising",
    "OrderwatchStoresAtRisk",
}


def _run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def promtool(system_tool: Tool) -> str:
    return system_tool("prometheus", "promtool")


@pytest.fixture(scope="module")
def amtool(system_tool: Tool) -> str:
    return system_tool("prometheus-alertmanager", "amtool")


# ---- Prometheus ----------------------------------------------------------------------------------


def test_promtool_checks_the_prometheus_config_and_the_rules_it_loads(promtool: str) -> None:
    checked = _run(promtool, "check", "config", PROMETHEUS_CONFIG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The config names the shipped rules file (relative to itself), and promtool loaded it.
    assert "SUCCESS: 1 rule files found" in checked.stdout
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout
    rule_files = load_yaml(PROMETHEUS_CONFIG)["rule_files"]
    assert [PROMETHEUS_CONFIG.parent / name for name in rule_files] == [ALERT_RULES]


def test_promtool_checks_the_rules(promtool: str) -> None:
    checked = _run(promtool, "check", "rules", ALERT_RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_the_promtool_unit_tests_of_the_rules_pass(promtool: str) -> None:
    tested = _run(promtool, "test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_load_the_shipped_rules_and_cover_every_alert_firing_and_not() -> None:
    tests = load_yaml(ALERT_TESTS)
    assert [ALERT_TESTS.parent / name for name in tests["rule_files"]] == [ALERT_RULES]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert firing == names, "alerts never shown firing: " + ", ".join(sorted(names - firing))
    assert quiet == names, "alerts never shown quiet: " + ", ".join(sorted(names - quiet))


def test_the_promtool_unit_tests_depend_on_the_rules(promtool: str, tmp_path: Path) -> None:
    """Without the rules the unit tests fail: they assert alerts, not the absence of any."""
    empty = tmp_path / "alerts.yml"
    empty.write_text("groups: []\n")
    (tmp_path / ALERT_TESTS.name).write_text(ALERT_TESTS.read_text())
    tested = _run(promtool, "test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert tested.returncode != 0
    assert "FAILED" in tested.stdout + tested.stderr


def test_every_asked_for_alert_is_there() -> None:
    assert {rule["alert"] for rule in alert_rules()} == EXPECTED_ALERTS


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook(
    rule: dict[str, object],
) -> None:
    labels = rule.get("labels")
    annotations = rule.get("annotations")
    assert isinstance(labels, dict)
    assert isinstance(annotations, dict)
    assert labels.get("severity") in ("critical", "warning")
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{rule['alert']} has no {key}"


#: A runbook link: the docs base (the external label, else the repository's docs/ folder) and
#: the alert's section of operations.md.
RUNBOOK_URL = re.compile(
    r'\{\{ or \$externalLabels\.orderwatch_docs_url "docs" \}\}/operations\.md#([a-z0-9-]+)'
)


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_runbook_is_a_link_to_a_section_of_docs_operations(rule: dict[str, object]) -> None:
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert "runbook" not in annotations, "runbook_url, the name tools show as a link"
    link = RUNBOOK_URL.fullmatch(str(annotations["runbook_url"]))
    assert link, f"{rule['alert']}: runbook_url {annotations['runbook_url']!r}"
    anchor = link.group(1)
    assert anchor == str(rule["alert"]).lower()
    assert anchor in github_anchors(OPERATIONS.read_text()), f"no section #{anchor}"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_counts_in_summaries_are_whole_numbers(rule: dict[str, object]) -> None:
    """increase() extrapolates (one message reads 1.1) and humanize gives 4k for 4000: a count
    is printed with printf "%.0f"."""
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    summary = str(annotations["summary"])
    printed = re.findall(r"\{\{ \$value \| ([^}]*)\}\}", summary)
    counted = "increase(" in str(rule["expr"]) or "lag_messages" in str(rule["expr"])
    if printed and counted:
        assert printed == ['printf "%.0f" '], summary
    assert "humanize }}" not in summary


def test_the_runbooks_are_subsections_of_the_alerts_section() -> None:
    text = OPERATIONS.read_text()
    alerts = re.search(r"^## Alerts\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert alerts is not None, "docs/operations.md has no '## Alerts' section"
    subsections = set(re.findall(r"^### (\S+)\s*$", alerts.group(1), re.MULTILINE))
    assert {rule["alert"] for rule in alert_rules()} <= subsections


# ---- Alertmanager --------------------------------------------------------------------------------


def test_amtool_checks_the_alertmanager_config(amtool: str) -> None:
    checked = _run(amtool, "check-config", ALERTMANAGER_CONFIG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "orderwatch-critical"), ("warning", "orderwatch-warning")],
)
def test_alertmanager_routes_by_severity(amtool: str, severity: str, receiver: str) -> None:
    routed = _run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        "alertname=OrderwatchAnything",
        f"severity={severity}",
    )
    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.split() == [receiver]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_reaches_the_receiver_of_its_severity(
    amtool: str, rule: dict[str, object]
) -> None:
    labels = rule["labels"]
    assert isinstance(labels, dict)
    routed = _run(
        amtool,
        "config",
        "routes",
        "test",
        f"--config.file={ALERTMANAGER_CONFIG}",
        f"alertname={rule['alert']}",
        f"severity={labels['severity']}",
    )
    assert routed.stdout.split() == [f"orderwatch-{labels['severity']}"], routed.stderr


# ---- Grafana ------------------------------------------------------------------------------------


def test_every_dashboard_query_parses(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as the expression of a recording rule."""
    queries = dashboard_queries()
    assert len(queries) >= 12
    rules = tmp_path / "dashboard.yml"
    rules.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "dashboard",
                        "rules": [
                            {"record": f"dashboard:query{i}", "expr": expr}
                            for i, (_, expr) in enumerate(queries)
                        ],
                    }
                ]
            }
        )
    )
    checked = _run(promtool, "check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


def test_no_dashboard_query_keeps_an_unknown_variable() -> None:
    for title, expr in dashboard_queries():
        assert "$" not in expr, f"{title}: {expr}"


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(expr for _, expr in dashboard_queries())
    for metric in (
        "orderwatch_events_consumed_total",
        "orderwatch_events_rejected_total",
        "orderwatch_breaches_total",
        "orderwatch_recommendations_total",
        "orderwatch_consumer_lag_messages",
        "orderwatch_breach_detection_lag_seconds_bucket",
        "orderwatch_processing_seconds_bucket",
        "orderwatch_clock_timestamp_seconds",
        "orderwatch_last_event_timestamp_seconds",
        "orderwatch_open_orders",
        "orderwatch_aggregate_inputs_waiting",
        "orderwatch_ready",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert metric in exprs, metric


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    [datasource] = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
    for variable in dashboard()["templating"]["list"]:
        assert variable["datasource"]["uid"] == datasource["uid"]


def test_the_dashboard_provider_loads_the_dashboards_directory() -> None:
    [provider] = load_yaml(GRAFANA / "provisioning" / "dashboards" / "orderwatch.yml")["providers"]
    assert provider["type"] == "file"
    assert DASHBOARD.parent.name == Path(provider["options"]["path"]).name
    assert len({panel["id"] for panel in dashboard_panels()}) == len(dashboard_panels())
