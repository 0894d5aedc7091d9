"""The built book in a real headless Chromium, offline.

The catalog page and its figure, internal links, rendered math, captioned figures, the recipes'
notebooks to download; any request that would leave the machine fails the test.
"""

import functools
import http.server
import json
import os
import shutil
import threading
from urllib.parse import urljoin, urlparse

import pytest

from .conftest import ROOT

HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

if not (HTML / "notebooks" / "catalog.html").is_file() or not CHROMIUM:
    if os.environ.get("PAIRZOO_REQUIRE_BOOK"):
        raise RuntimeError("the browser test needs the built book (make book) and chromium")
    pytest.skip(
        "the browser test runs after `make book` (make browser-test)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def site():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOCAL_SCHEMES = {"file", "data", "blob", "about"}


def leaves_the_machine(url: str) -> bool:
    parts = urlparse(url)
    return parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOOPBACK


@pytest.fixture(scope="module")
def outside():
    """Every request the browser tried to send off the machine (each one aborted)."""
    return []


@pytest.fixture(scope="module")
def page(outside):
    from playwright.sync_api import sync_playwright

    def guard(route):
        if leaves_the_machine(route.request.url):
            outside.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1300, "height": 900})
        context.route("**/*", guard)
        context.on("websocket", lambda socket: outside.append(socket.url))
        yield context.new_page()
        browser.close()


@pytest.fixture(autouse=True)
def stays_on_the_machine(outside):
    yield
    leaked = sorted(set(outside))
    outside.clear()
    assert not leaked, f"requests that leave the machine: {leaked}"


def typeset(page) -> None:
    """Wait until MathJax, when the page loads it, has typeset the page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if not page.locator("script[src*='mathjax']").count():
        return
    try:
        page.wait_for_function("() => window.MathJax?.startup?.promise", timeout=15_000)
    except PlaywrightTimeout:
        return  # MathJax did not load: its formulas stay TeX, which unrendered_math reports
    page.evaluate("() => MathJax.startup.promise")


def unrendered_math(page) -> list[str]:
    """Formulas still shown as TeX: math elements without MathJax output, or TeX delimiters."""
    raw = page.locator(".math").evaluate_all(
        "els => els.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent)"
    )
    text = page.locator("main").evaluate(
        "main => { const prose = main.cloneNode(true);"
        " prose.querySelectorAll('pre, code, .highlight, mjx-container').forEach(e => e.remove());"
        " return prose.textContent; }"
    )
    return raw + [marker for marker in ("\\(", "\\[") if marker in text]


def uncaptioned_figures(page) -> list[str]:
    """Output images not in a captioned figure, or whose alt text is not the caption."""
    return page.locator("main .cell_output img").evaluate_all(
        """els => els.filter(e => {
            const caption = e.closest('figure')?.querySelector('figcaption');
            const text = caption ? caption.textContent : '';
            return !text.trim() || !e.alt || e.alt === e.getAttribute('src')
                || !text.includes(e.alt.slice(0, 20));
        }).map(e => e.getAttribute('src'))"""
    )


def test_catalog_page_shows_the_lineage_figure(site, page):
    page.goto(urljoin(site, "notebooks/catalog.html"))
    assert "catalog" in page.title().lower()
    images = page.locator("main img")
    assert images.count() >= 1
    widths = images.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
    assert max(widths) > 300
    assert page.locator("main table").count() >= 2
    page.screenshot(path=str(ROOT / "_build" / "catalog.png"), full_page=True)


def test_no_broken_internal_links(site, page):
    assert page.request.get(urljoin(site, "index.html")).ok  # a redirect page to the root
    seen, queue, broken = {urljoin(site, "index.html")}, [urljoin(site, "book/intro.html")], []
    math, figures = [], []
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = page.goto(url)
        if response is None or not response.ok:
            broken.append(url)
            continue
        typeset(page)
        math.extend(f"{url}: {formula}" for formula in unrendered_math(page))
        figures.extend(f"{url}: {image}" for image in uncaptioned_figures(page))
        hrefs = page.locator("a[href]").evaluate_all("els => els.map(e => e.href)")
        for href in hrefs:
            target = href.split("#")[0]
            if urlparse(target).netloc != urlparse(site).netloc or target in seen:
                continue
            if target.endswith((".html", "/")):
                queue.append(target)
            elif not page.request.get(target).ok:
                broken.append(target)
    assert not broken, broken
    assert any(url.endswith("notebooks/catalog.html") for url in seen)
    assert any(url.endswith("book/references.html") for url in seen)
    assert not math, math
    assert not figures, figures


def test_the_formula_is_typeset_by_the_mathjax_the_book_serves(site, page):
    page.goto(urljoin(site, "notebooks/update_coding.html"))
    sources = page.locator("script[src*='mathjax']").evaluate_all("els => els.map(e => e.src)")
    assert sources and all(urlparse(src).netloc == urlparse(site).netloc for src in sources)
    typeset(page)
    assert not unrendered_math(page)
    assert page.locator("main mjx-container").count() >= 2


def test_a_recipe_page_offers_its_executed_notebook(site, page):
    page.goto(urljoin(site, "notebooks/retraining.html"))
    links = page.locator("a[href$='.ipynb']").evaluate_all("els => els.map(e => e.href)")
    assert any(link.endswith("_sources/notebooks/retraining.ipynb") for link in links), links
    notebook = json.loads(page.request.get(links[0]).body())
    outputs = [o for cell in notebook["cells"] for o in cell.get("outputs", [])]
    assert any("image/png" in output.get("data", {}) for output in outputs)
    assert page.locator("a[href='https://github.com/pairzoo/pairzoo']").count() >= 1
    assert page.locator("a[href*='github.com/pairzoo/pairzoo/issues']").count() >= 1
