"""The built book in a real headless Chromium: the catalog page, its figure, internal links."""

import functools
import http.server
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


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser.new_page(viewport={"width": 1300, "height": 900})
        browser.close()


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
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = page.goto(url)
        if response is None or not response.ok:
            broken.append(url)
            continue
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
