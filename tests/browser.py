"""Opening a report in a real headless browser: Debian's chromium, driven by Playwright's
Python package (its own browser download is never used: ``executable_path``).

``open_page(path)`` yields a Playwright page that loaded ``file://path`` and records, on
``page.console_errors`` / ``page.requests``, every console error (page errors included) and
every request the page made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's chromium (``./dev.sh setup`` installs it); a missing one fails the test:
    the browser tests are never skipped."""
    found = os.environ.get("ADAPTVC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        raise AssertionError("chromium not found: run ./dev.sh setup (apt-get install chromium)")
    return found


@contextlib.contextmanager
def open_page(path: Path, *, viewport: tuple[int, int] = (1366, 900)) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="adaptvc-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": viewport[0], "height": viewport[1]},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            context.on("request", lambda r: requests.append(r.url))
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.console_errors = errors
            page.requests = requests
            yield page
        finally:
            context.close()


def screenshot(report: Path, png: Path, *, width: int = 1200, height: int = 900) -> None:
    """A PNG of the whole of ``report`` (docs/report.png is made with it)."""
    with open_page(report, viewport=(width, height)) as page:
        assert page.console_errors == [], page.console_errors
        page.screenshot(path=str(png), full_page=True)


if __name__ == "__main__":  # python -m tests.browser REPORT.html OUT.png
    import sys

    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
