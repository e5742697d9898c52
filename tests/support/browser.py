"""A real headless Chromium (Debian's chromium + chromium-driver) driven with Selenium.

Without the browser the console tests skip with a one-line reason; with
ACCEPTD_REQUIRE_BROWSER=1 (set by .ci/run) that skip is a failure instead, so CI always
runs them. The app under test runs in the test's event loop: drive the browser from a
thread (`await asyncio.to_thread(...)`) so the server can answer it."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHROMIUM = os.environ.get("ACCEPTD_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ACCEPTD_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("ACCEPTD_ARTIFACTS", "build/artifacts")) / "console"


def browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if not missing:
        return
    reason = (
        f"no browser for the console tests ({', '.join(missing)}): "
        "apt-get install chromium chromium-driver"
    )
    if os.environ.get("ACCEPTD_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


class Browser:
    def __init__(self, width: int = 1280, height: int = 800) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        flags = (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            f"--window-size={width},{height}",
            "--disable-gpu",
            "--lang=en-US",
        )
        for flag in flags:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)

    def quit(self) -> None:
        self.driver.quit()

    def go(self, url: str) -> None:
        self.driver.get(url)

    def until(self, found: Callable[[], T | None], timeout: float = 15, what: str = "") -> T:
        """Polls `found` (stale elements and all) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = found()
                if value:
                    return value
            except Exception as exc:  # a redraw replaced the element: look again
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what or found}: {last}")

    def css(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def one(self, selector: str, timeout: float = 15) -> Any:
        return self.until(lambda: (self.css(selector) or [None])[0], timeout, selector)

    def click(self, selector: str, timeout: float = 15) -> None:
        def clicked() -> bool:
            self.css(selector)[0].click()
            return True

        self.until(clicked, timeout, f"click {selector}")

    def text(self, selector: str) -> str:
        """The visible text of every match, read in one script (no element can go stale)."""
        found = self.js(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText).join(' ')",
            selector,
        )
        return str(found)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")  # type: ignore[no-untyped-call]
            if entry["level"] == "SEVERE"
        ]


def browsers() -> Iterator[Browser]:
    browser_or_skip()
    browser = Browser()
    try:
        yield browser
    finally:
        browser.quit()
