"""Browser tests: headless Chromium (Debian's, through Playwright) against real servers.

Every page a test visits is screenshotted into build/screenshots/ and checked for console
errors and for axe-core accessibility violations of impact serious or critical.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ServerProcess, free_port, service_env

CHROMIUM = os.environ.get("EVENTPRO_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module: Playwright's sync API keeps an asyncio loop running in
    this thread while it is open, and later tests call asyncio.run()."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {CHROMIUM}: apt install chromium")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def start_server(folder: Path, workers: int = 1, **settings: str) -> ServerProcess:
    env = service_env(
        EVENTPRO_DATABASE_URL=f"sqlite:///{folder / 'pages.db'}",
        EVENTPRO_ADMIN_TOKEN=secrets.token_urlsafe(24),
        **settings,
    )
    return ServerProcess(env, free_port(), workers=workers, log=folder / "server.log")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("pages")) as running:
        yield running


class Watched:
    """A browser page whose console errors are collected, with a check of the whole page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console_errors: list[str] = []
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def check(self, name: str) -> None:
        """Screenshot the page, then fail on console errors or serious axe violations."""
        from axe_playwright_python.sync_playwright import Axe

        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        results = Axe().run(self.page)
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, "\n".join(serious)
        assert not self.console_errors, self.console_errors


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Watched]]:
    contexts: list[Any] = []

    def make(width: int = 1100, height: int = 900) -> Watched:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        return Watched(context.new_page())

    yield make
    for context in contexts:
        context.close()


def new_event(server: ServerProcess, **overrides: object) -> dict[str, Any]:
    body: dict[str, object] = {
        "name": "Night of the Pages",
        "venue": "Stadium",
        "starts_at": "2030-12-12T19:00:00Z",
        "per_buyer_limit": 4,
        "sections": [
            {"name": "Floor", "capacity": 50, "price_cents": 2500},
            {"name": "A", "price_cents": 4000, "seats": ["A1", "A2", "A3", "A4"]},
        ],
        **overrides,
    }
    answer = server.admin.post("/v1/events", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def log_in(page: Any, server: ServerProcess) -> None:
    page.goto(f"{server.base_url}/admin")
    page.get_by_label("Admin token").fill(server.env["EVENTPRO_ADMIN_TOKEN"])
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Sales").wait_for()
