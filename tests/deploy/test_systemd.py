"""The systemd unit restarts exactly the worker's transient stops (exit 75, a kill by a signal),
not a bad setting (exit 1 or 2); systemd's own systemd-analyze checks the file."""

from __future__ import annotations

import configparser
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from deploy_files import DEPLOY

from streams.errors import ConfigurationError
from streams.worker.admission import EXIT_REFUSED
from streams.worker.failures import EXIT_KAFKA_UNAVAILABLE

UNIT = DEPLOY / "systemd" / "orderwatch.service"

#: The signals systemd counts as a clean stop (systemd.service, "Restart=").
CLEAN_SIGNALS = {"SIGHUP", "SIGINT", "SIGTERM", "SIGPIPE"}


class UnitParser(configparser.ConfigParser):
    """Keeps a unit file's keys as written: systemd's are case-sensitive (``Restart``)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def service() -> configparser.SectionProxy:
    parser = UnitParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def restarts(unit: configparser.SectionProxy, *, code: int = 0, signal: str = "") -> bool:
    """Whether systemd restarts the service after it exited with ``code`` or was killed by
    ``signal``, by the rules of systemd.service(5) for Restart=, RestartForceExitStatus= and
    RestartPreventExitStatus= (exit statuses only)."""
    forced = {int(c) for c in unit.get("RestartForceExitStatus", "").split()}
    prevented = {int(c) for c in unit.get("RestartPreventExitStatus", "").split()}
    if not signal and code in prevented:
        return False
    if not signal and code in forced:
        return True
    clean = (not signal and code == 0) or signal in CLEAN_SIGNALS
    policy = unit.get("Restart", "no")
    return {
        "no": False,
        "always": True,
        "on-success": clean,
        "on-failure": not clean,
        "on-abnormal": bool(signal) and signal not in CLEAN_SIGNALS,
        "on-abort": bool(signal) and signal not in CLEAN_SIGNALS,
    }[policy]


def test_the_unit_runs_the_worker_as_an_unprivileged_user_with_its_settings_in_a_file() -> None:
    unit = service()
    program, command = shlex.split(unit["ExecStart"])
    assert program.endswith("/bin/orderwatch")
    assert command == "worker"
    assert unit["User"] not in ("", "root")
    assert unit["EnvironmentFile"].endswith(".env")


@pytest.mark.parametrize(
    ("code", "signal", "restarted"),
    [
        (EXIT_KAFKA_UNAVAILABLE, "", True),  # Kafka unavailable, a crash in Faust
        (0, "SIGKILL", True),  # the OOM killer
        (0, "SIGSEGV", True),
        (0, "SIGABRT", True),
        (ConfigurationError.exit_code, "", False),  # a bad setting
        (EXIT_REFUSED, "", False),  # refused by the group, or exactly_once
        (0, "", False),  # stopped
        (0, "SIGTERM", False),  # systemctl stop
    ],
)
def test_the_unit_restarts_exactly_the_transient_stops(
    code: int, signal: str, restarted: bool
) -> None:
    assert restarts(service(), code=code, signal=signal) is restarted


def test_the_model_of_systemd_tells_the_former_unit_apart() -> None:
    """The unit before: Restart=on-failure with RestartPreventExitStatus=1 2 restarted exit 75,
    but also any other status; the model sees the difference (and so can fail)."""
    parser = UnitParser(interpolation=None)
    parser.read_string("[Service]\nRestart=on-failure\nRestartPreventExitStatus=1 2\n")
    former = parser["Service"]
    assert restarts(former, code=75)
    assert not restarts(former, code=2)
    assert restarts(former, code=3)
    assert not restarts(service(), code=3)


def test_systemd_analyze_verifies_the_unit(system_tool: Callable[..., str], tmp_path: Path) -> None:
    """systemd's own parser accepts every line (it warns of a value it cannot parse). The
    program must exist for it: ExecStart is pointed at /bin/true, the rest kept."""
    analyze = system_tool("systemd", "systemd-analyze")
    unit = tmp_path / UNIT.name
    text = UNIT.read_text()
    start = service()["ExecStart"]
    unit.write_text(text.replace(start, "/bin/true worker"))
    checked = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout + checked.stderr == ""
    broken = tmp_path / "broken" / UNIT.name
    broken.parent.mkdir()
    broken.write_text(
        unit.read_text().replace("RestartForceExitStatus=75", "RestartForceExitStatus=x")
    )
    warned = subprocess.run(
        [analyze, "verify", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "RestartForceExitStatus" in warned.stderr or "Failed to parse" in warned.stderr
