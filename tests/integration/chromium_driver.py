"""Headless Chromium for the console's tests, driven through chromedriver's W3C WebDriver HTTP
API with the standard library (Debian's ``chromium`` and ``chromium-driver``).

A small client of our own rather than selenium: the tests need a dozen calls (open a page, run a
script, find an element, type, click, take a screenshot), each one JSON request.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

#: The W3C name of an element reference in WebDriver answers.
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def chromium_paths() -> tuple[str, str]:
    """Chromium's and chromedriver's paths; skips the test where they are missing (fails it in
    CI, which installs them)."""
    import pytest

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        message = "chromium and chromedriver are needed (Debian packages chromium, chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


class WebDriverError(AssertionError):
    """A WebDriver command failed (its error and message)."""


class Chromium:
    """One headless Chromium session behind its own chromedriver process."""

    def __init__(
        self,
        *,
        size: tuple[int, int] = (1400, 1800),
        timezone: str | None = None,
        log: Path | None = None,
    ) -> None:
        browser, driver = chromium_paths()
        self.profile = tempfile.TemporaryDirectory(prefix="orderwatch-chromium-")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        env = dict(os.environ)
        if timezone:
            env["TZ"] = timezone  # the browser's zone: the page shows times in it
        self._log = log.open("ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [driver, f"--port={self.port}"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.session: str | None = None
        try:
            self._wait_for_driver()
            answer = self._call(
                "POST",
                "/session",
                {
                    "capabilities": {
                        "alwaysMatch": {
                            "browserName": "chrome",
                            "goog:chromeOptions": {
                                "binary": browser,
                                "args": [
                                    "--headless=new",
                                    # root in CI and here: Chromium's sandbox refuses root.
                                    "--no-sandbox",
                                    "--disable-gpu",
                                    "--disable-dev-shm-usage",
                                    "--no-first-run",
                                    "--no-default-browser-check",
                                    "--disable-extensions",
                                    "--disable-background-networking",
                                    "--disable-component-update",
                                    "--disable-sync",
                                    f"--window-size={size[0]},{size[1]}",
                                    f"--user-data-dir={self.profile.name}",
                                ],
                            },
                        }
                    }
                },
            )
            self.session = str(answer["sessionId"])
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(OSError, WebDriverError):
                self._call("DELETE", f"/session/{self.session}")
            self.session = None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not subprocess.DEVNULL and hasattr(self._log, "close"):
            self._log.close()
        self.profile.cleanup()

    # -- the protocol -----------------------------------------------------------------------

    def _wait_for_driver(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WebDriverError(f"chromedriver exited with {self.process.returncode}")
            try:
                if self._call("GET", "/status").get("ready"):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise WebDriverError("chromedriver did not start within 30 s")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                value = json.loads(error.read()).get("value", {})
            except ValueError:
                value = {}
            raise WebDriverError(
                f"{method} {path}: {value.get('error', error.code)}: {value.get('message', '')}"
            ) from None
        return answer.get("value")

    def _session(self, method: str, path: str, body: Any = None) -> Any:
        assert self.session is not None, "the session is closed"
        return self._call(method, f"/session/{self.session}{path}", body)

    # -- what tests use ---------------------------------------------------------------------

    def open(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """The value of ``script`` (a function body: ``return ...``) run in the page."""
        return self._session("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css: str) -> str:
        """The reference of the first element matching ``css``."""
        found = self._session("POST", "/element", {"using": "css selector", "value": css})
        return str(found[ELEMENT])

    def type(self, css: str, text: str) -> None:
        self._session("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self._session("POST", f"/element/{self.find(css)}/click", {})

    def text(self, css: str = "body") -> str:
        """The text of the first element matching ``css`` ("" when none does)."""
        found = self.run(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css
        )
        return str(found)

    def screenshot(self, path: Path, css: str | None = None) -> Path:
        """A PNG of the window, or of the first element matching ``css`` (scrolled into view)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if css is not None:  # its top at the window's: as much of it as fits is seen
            self.run("document.querySelector(arguments[0]).scrollIntoView(true)", css)
        where = "/screenshot" if css is None else f"/element/{self.find(css)}/screenshot"
        path.write_bytes(base64.b64decode(self._session("GET", where)))
        return path

    def wait(self, what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
        """Poll ``check`` until it gives something (not None, not False)."""
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found is not None and found is not False:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; the page shows:\n"
                    f"{self.text()[:3000]}"
                )
            time.sleep(0.3)
