"""Open a local file in Debian's headless chromium (Playwright), with JavaScript off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags chromium tries hosts this machine cannot reach.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def open_page(path: Path, width: int = 1440, height: int = 900) -> Iterator:
    try:
        from playwright import sync_api
    except ImportError:
        pytest.fail("playwright is missing: run scripts/test.sh, or .venv/bin/pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh (it installs it), or apt-get install chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(java_script_enabled=False, viewport={"width": width, "height": height})
            requests: list[str] = []
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            page.goto(path.as_uri())
            yield page
            assert requests == [path.as_uri()], f"the page asked for more than itself: {requests}"
        finally:
            browser.close()
