"""Drive the service's web page in a real headless Chromium (Debian's, through Playwright).

Playwright's own browser download does not work on the CI machines, so the system Chromium is
launched with flags that keep it off the network (the machines have no internet; without
``--disable-background-networking`` Chromium stalls on start).
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: the sessionStorage key under which index.html keeps the API key for the tab
API_KEY_STORAGE = "pneumo.apiKey"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

FINISHED = "#result[data-state=done], #result[data-state=error]"


class PageError(AssertionError):
    """The page raised a JavaScript error, or never reached a finished state."""


def chromium_path() -> str | None:
    """The system Chromium executable, or None when it is not installed."""
    found = shutil.which("chromium")
    if found:
        return found
    fallback = Path("/usr/bin/chromium")
    return str(fallback) if fallback.is_file() else None


def upload_in_browser(
    url: str,
    image: Path,
    screenshot: Path,
    api_key: str | None = None,
    timeout_s: float = 30,
    requests: list[str] | None = None,
    viewport: tuple[int, int] = (1280, 900),
    explain: bool = False,
) -> dict[str, str]:
    """Open ``url``, upload ``image`` through ``#file`` and wait for the result.

    Returns the texts the page shows: ``state`` (``done`` or ``error``), ``probability``,
    ``decision``, ``version`` and ``error``; with ``explain`` (the page's "where the model
    looked" box ticked first), ``overlay``: the width of the activation map it shows. A
    full-page screenshot is written to ``screenshot``. Every URL the page requests is appended
    to ``requests`` when given.
    Raises :class:`PageError` when the page logs an uncaught JavaScript error or does not finish
    within ``timeout_s``.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("Chromium is not installed (looked for `chromium` on PATH)")
    timeout_ms = timeout_s * 1000
    js_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=timeout_ms
        )
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            if api_key is not None:
                # Stored before any page script runs, so the page's first call already has it.
                context.add_init_script(
                    f"window.sessionStorage.setItem({API_KEY_STORAGE!r}, {api_key!r});"
                )
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            page.on("pageerror", lambda exc: js_errors.append(str(exc)))
            if requests is not None:
                page.on("request", lambda request: requests.append(request.url))

            page.goto(url, wait_until="load")
            if api_key is not None and page.locator("#api-key").is_visible():
                page.fill("#api-key", api_key)
                page.press("#api-key", "Enter")
            if explain:
                page.check("#explain")
            page.set_input_files("#file", str(image))
            try:
                page.wait_for_selector(FINISHED, state="attached", timeout=timeout_ms)
                if explain and page.get_attribute("#result", "data-state") == "done":
                    page.wait_for_function(
                        "() => { const o = document.getElementById('overlay');"
                        " return !o.hidden && o.complete && o.naturalWidth > 0; }",
                        timeout=timeout_ms,
                    )
            except PlaywrightError as exc:
                state = page.get_attribute("#result", "data-state")
                raise PageError(
                    f"page did not finish within {timeout_s}s (data-state={state!r}); "
                    f"JavaScript errors: {js_errors or 'none'}"
                ) from exc
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            result = {
                "state": page.get_attribute("#result", "data-state") or "",
                "probability": page.inner_text("#probability").strip(),
                "decision": page.inner_text("#decision").strip(),
                "version": page.inner_text("#model-version").strip(),
                "error": page.inner_text("#error").strip(),
            }
            if explain:
                width = page.eval_on_selector("#overlay", "o => o.hidden ? 0 : o.naturalWidth")
                result["overlay"] = str(width)
        finally:
            browser.close()
    if js_errors:
        raise PageError("JavaScript error on the page: " + "; ".join(js_errors))
    return result


def open_report(path: Path, screenshot: Path, timeout_s: float = 30) -> dict[str, int]:
    """Open a self-contained HTML report from disk in headless Chromium: how many figures it
    has, how many of them the browser decoded, how many requests left the file (none should),
    and its sections (``h2``). A full-page screenshot is written to ``screenshot``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("Chromium is not installed (looked for `chromium` on PATH)")
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=timeout_s * 1000
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "request", lambda r: outside.append(r.url) if r.url.startswith("http") else None
            )
            page.goto(path.resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            sections = page.eval_on_selector_all("h2", "els => els.length")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {
        "figures": len(images), "decoded": sum(1 for w in images if w > 0),
        "outside_requests": len(outside), "sections": int(sections),
    }  # fmt: skip
