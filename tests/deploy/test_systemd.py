"""The systemd unit restarts a worker that stopped itself (exit 75), not a misconfigured one."""

from __future__ import annotations

import configparser
import shlex

from deploy_files import DEPLOY

from streams.failures import EXIT_KAFKA_UNAVAILABLE

UNIT = DEPLOY / "systemd" / "orderwatch.service"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_runs_the_worker_as_an_unprivileged_user_with_its_settings_in_a_file() -> None:
    unit = service()
    program, command = shlex.split(unit["ExecStart"])
    assert program.endswith("/bin/orderwatch")
    assert command == "worker"
    assert unit["User"] not in ("", "root")
    assert unit["EnvironmentFile"].endswith(".env")


def test_a_worker_that_stopped_itself_is_restarted_and_a_bad_setting_is_not() -> None:
    unit = service()
    prevented = {int(code) for code in unit["RestartPreventExitStatus"].split()}
    assert unit["Restart"] == "on-failure"
    assert EXIT_KAFKA_UNAVAILABLE not in prevented
    # click exits 1 for a bad setting (ConfigurationError) and 2 for a bad flag.
    assert prevented == {1, 2}
