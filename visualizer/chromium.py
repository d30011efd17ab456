"""Find, or else install, the Chromium that the browser tests, the live-latency benchmark and
the screenshot script drive, so that `uv run pytest` works on a machine with no browser yet.

Order: an installed Chromium (``CHROMIUM`` in the environment, then the system's); then
Playwright's own build (downloaded if missing); then, on Debian or Ubuntu as root, Debian's
``chromium`` package. If none works, ``BrowserUnavailable`` says in one line what to do.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

SYSTEM_CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
INSTALL_TIMEOUT = 600


class BrowserUnavailable(RuntimeError):
    """No Chromium could be found or installed; the message says how to get one."""


def installed_chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    candidates = [os.environ.get("CHROMIUM"), *SYSTEM_CHROMIUMS, shutil.which("chromium")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@functools.cache
def chromium_executable() -> str | None:
    """The Chromium to launch: a path, or None for Playwright's own build. Installs one if
    there is none (a few minutes, once); raises BrowserUnavailable if it cannot."""
    found = installed_chromium()
    if found:
        return found
    if _playwright_build_present() or _run(
        [sys.executable, "-m", "playwright", "install", "chromium"]
    ):
        return None
    if Path("/etc/debian_version").exists() and os.geteuid() == 0:
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if _run(["apt-get", "update", "-qq"], environment) and _run(
            ["apt-get", "install", "-y", "-qq", "chromium"], environment
        ):
            found = installed_chromium()
            if found:
                return found
    raise BrowserUnavailable(
        "No Chromium for the browser tests: install one (Debian/Ubuntu: `sudo apt-get install "
        "chromium`; elsewhere: `uv run playwright install chromium`) or set CHROMIUM to its path."
    )


def _playwright_build_present() -> bool:
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            return Path(playwright.chromium.executable_path).is_file()
    except Exception:
        return False


def _run(command: list[str], environment: dict[str, str] | None = None) -> bool:
    print(f"Getting a browser for the tests: {' '.join(command)}", file=sys.stderr)
    try:
        result = subprocess.run(
            command, env=environment, capture_output=True, timeout=INSTALL_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0
