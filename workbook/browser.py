"""Find a Chrome, Chromium or Edge for the site's browser check, or skip only that check.

``python -m workbook browser`` prints the browser ``make test`` passes to the site test
(``CHROMIUM``, which ``workbook/tests/test_site.py`` reads). Loaded as a pytest plugin
(``-p workbook.browser``, only for a learner's machine without one, never in CI), it skips
the tests that need the browser and keeps every other check.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Any Chromium-based browser takes the same headless flags.
COMMANDS = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "microsoft-edge",
    "microsoft-edge-stable",
)
MACOS_APPS = (
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
)
HOW_TO_GET_ONE = (
    "no Chrome, Chromium or Edge found: install one (e.g. Google Chrome, or "
    "`sudo apt-get install chromium`) or set CHROMIUM=/path/to/it"
)
SKIPPING = f"{HOW_TO_GET_ONE}; skipping only the site's browser checks"


def find_browser() -> str | None:
    """The first Chromium-based browser on this machine: ``$CHROMIUM``, a command, an app."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for command in COMMANDS:
        found = shutil.which(command)
        if found:
            return found
    home_apps = [str(Path.home() / app.lstrip("/")) for app in MACOS_APPS]
    return next((app for app in (*MACOS_APPS, *home_apps) if Path(app).is_file()), None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The site tests that open pages ask for the `browser` fixture; the build checks do not.
    skip = pytest.mark.skip(reason=SKIPPING)
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
