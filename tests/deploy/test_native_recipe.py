"""docs/operations.md's "Prometheus and Alertmanager without containers": the prometheus.yml it
gives loads the shipped rules, scrapes the job the alerts expect, and reaches the Alertmanager
address its flags give (checked with promtool, as the recipe says)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import ALERT_RULES, ALERTMANAGER_CONFIG, OPERATIONS, alert_rules

Tool = Callable[..., str]
SECTION = "## Prometheus and Alertmanager without containers"


def recipe() -> str:
    text = OPERATIONS.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return text[start:end]


def recipe_config() -> dict[str, Any]:
    [block] = re.findall(r"```yaml\n(.*?)```", recipe(), re.S)
    config: dict[str, Any] = yaml.safe_load(block)
    return config


def test_the_recipe_s_config_scrapes_the_job_the_alerts_expect() -> None:
    config = recipe_config()
    assert config["rule_files"] == [ALERT_RULES.name]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["orderwatch"]["static_configs"] == [{"targets": ["127.0.0.1:6066"]}]
    assert any('job="orderwatch"' in rule["expr"] for rule in alert_rules())
    [manager] = config["alerting"]["alertmanagers"]
    [targets] = [entry["targets"] for entry in manager["static_configs"]]
    # the address the recipe's alertmanager command listens on
    assert targets == ["127.0.0.1:9093"]
    assert "prometheus-alertmanager --config.file=alertmanager.yml" in recipe()
    assert "--web.listen-address=127.0.0.1:9093" in recipe()


def test_promtool_accepts_the_recipe_s_config_with_the_shipped_rules(
    system_tool: Tool, tmp_path: Path
) -> None:
    promtool = system_tool("prometheus", "promtool")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(recipe_config()))
    shutil.copy(ALERT_RULES, tmp_path / ALERT_RULES.name)
    shutil.copy(ALERTMANAGER_CONFIG, tmp_path / ALERTMANAGER_CONFIG.name)

    checked = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(alert_rules())} rules found" in checked.stdout + checked.stderr


@pytest.mark.parametrize("binary", ["prometheus", "promtool", "prometheus-alertmanager", "amtool"])
def test_the_recipe_names_each_binary_and_its_package(binary: str) -> None:
    assert f"`{binary}`" in recipe()
    assert "apt-get install prometheus prometheus-alertmanager" in recipe()
