"""The documentation site: built with ``mkdocs build --strict``, checked in headless Chromium.

One build per session, served from a local ``http.server``; every page is loaded by the
real browser (``chromium --headless --dump-dom``) and checked in the DOM it renders.
Set ``SITE_SCREENSHOT_DIR`` to keep the screenshot somewhere other than pytest's tmp dir.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from workbook.parts import APP_PATHS, REPO_ROOT, Part, all_parts, app_files, checkpoint_dir

CHROMIUM_MISSING = (
    "headless Chromium is required to check the site in a real browser, and none was found. "
    "Install it with `make browser` (Debian/Ubuntu, as root: "
    "`apt-get update && apt-get install -y chromium`), or point CHROMIUM at its binary."
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
PAGE_TIMEOUT = 60  # seconds for one page load; a page normally takes one or two
BROWSERS = max(2, min(4, (os.cpu_count() or 1) + 1))  # Chromium processes at a time
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_BAR = re.compile(r'<nav class="sw-part-bar"[^>]*>(.*?)</nav>', re.DOTALL)
_HREF = re.compile(r'href="([^"]*)"')
PARTS = all_parts()


# --- helpers ---------------------------------------------------------------------------


class _TextExtractor(HTMLParser):
    """The text a reader sees: everything outside <script>, <style> and <template>."""

    _HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def normalize(text: str) -> str:
    return " ".join(_ANSI.sub("", text).split())


def visible_text(dom: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(dom)
    return normalize("".join(extractor.parts))


@dataclass(frozen=True)
class Rendered:
    url: str
    dom: str

    @functools.cached_property
    def text(self) -> str:
        return visible_text(self.dom)


@dataclass
class Browser:
    binary: str
    base_url: str
    site_dir: Path
    _loaded: dict[str, Rendered | str] = field(default_factory=dict)

    def _run(self, url: str, *extra: str) -> subprocess.CompletedProcess[str] | str:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
            try:
                return subprocess.run(
                    command, capture_output=True, text=True, timeout=PAGE_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired:
                return f"chromium did not finish loading {url} in {PAGE_TIMEOUT} s"

    def _load(self, path: str) -> Rendered | str:
        url = urljoin(self.base_url, path)
        result = self._run(url, "--dump-dom")
        if isinstance(result, str):
            return result
        if result.returncode != 0 or "<body" not in result.stdout:
            return f"chromium could not render {url} (exit {result.returncode}):\n{result.stderr}"
        return Rendered(url, result.stdout)

    def prefetch(self, paths: list[str]) -> None:
        """Load pages in parallel: starting Chromium is most of the time a page takes."""
        with ThreadPoolExecutor(max_workers=BROWSERS) as pool:
            self._loaded.update(zip(paths, pool.map(self._load, paths), strict=True))

    def dom(self, path: str) -> Rendered:
        """The DOM of the page at ``path`` (relative to the site root) after it loaded."""
        loaded = self._loaded.get(path) or self._load(path)
        if isinstance(loaded, str):
            pytest.fail(loaded)
        return loaded

    def screenshot(self, path: str, target: Path) -> None:
        url = urljoin(self.base_url, path)
        result = self._run(url, f"--screenshot={target}", "--window-size=1280,2000")
        if isinstance(result, str):
            pytest.fail(result)
        if result.returncode != 0 or not target.is_file():
            pytest.fail(
                f"chromium could not screenshot {url} (exit {result.returncode}):\n{result.stderr}"
            )

    def site_file(self, page_url: str, href: str) -> Path:
        """The built file a link on ``page_url`` points to (it must stay on this site)."""
        target = urlsplit(urljoin(page_url, href))
        assert f"{target.scheme}://{target.netloc}/" == self.base_url, f"{href} leaves the site"
        path = self.site_dir / target.path.lstrip("/")
        return path / "index.html" if target.path.endswith("/") else path


def find_chromium() -> str | None:
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def notebook_cells(part: Part) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads(part.notebook.read_text(encoding="utf-8"))["cells"]
    return cells


def code_snippets(part: Part) -> list[str]:
    """A distinctive line of the first and of the last code cell."""
    sources = ["".join(c["source"]) for c in notebook_cells(part) if c["cell_type"] == "code"]
    sources = [s for s in sources if s.strip()]
    assert sources, f"{part.notebook.name} has no code cell"
    snippets = []
    for source in dict.fromkeys([sources[0], sources[-1]]):
        lines = [normalize(line) for line in source.splitlines() if line.strip()]
        snippets.append(max(lines, key=len))
    return snippets


def output_texts(part: Part) -> list[str]:
    """The first line of every stored text output, as a reader should see it."""
    texts = []
    for cell in notebook_cells(part):
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                text = "".join(output["text"])
            elif kind == "error":
                text = f"{output['ename']}: {output['evalue']}"
            elif kind in ("execute_result", "display_data"):
                data = output.get("data", {})
                if set(data) != {"text/plain"}:
                    continue  # shown as HTML, an image…: the plain text is only a fallback
                text = "".join(data["text/plain"])
            else:
                continue
            if "\r" in text:
                continue  # progress bars: the stored text is not what is shown
            lines = [normalize(line) for line in text.splitlines() if line.strip()]
            if lines:
                texts.append(lines[0])
    return texts


def png_outputs(part: Part) -> int:
    return sum(
        1
        for cell in notebook_cells(part)
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    )


def checkpoint_files(number: int) -> dict[str, Path] | None:
    """The application files after part ``number``, or None if not generated yet."""
    root = checkpoint_dir(number)
    if root is None:
        return {}
    if not any((root / top).exists() for top in APP_PATHS):
        return None
    return app_files(root)


def page_path(part: Part) -> str:
    return f"parts/{part.notebook.stem}/"


def changes_path(part: Part) -> str:
    return f"parts/{part.name}-changes/"


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs)] if mkdocs.is_file() else [sys.executable, "-m", "mkdocs"]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}")
    return site


@pytest.fixture(scope="session")
def browser(site_dir: Path) -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None:
        pytest.fail(CHROMIUM_MISSING)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser = Browser(binary, f"http://127.0.0.1:{server.server_address[1]}/", site_dir)
        browser.prefetch(["", *map(page_path, PARTS), *map(changes_path, PARTS)])
        yield browser
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- tests -----------------------------------------------------------------------------


def test_there_are_parts() -> None:
    assert PARTS, "no notebooks/part-NN-<slug>.ipynb: the site has no part pages"


def test_home_page(browser: Browser) -> None:
    home = browser.dom("")
    assert "ShelfWise Workbook" in home.text
    assert "<title>ShelfWise Workbook</title>" in home.dom
    assert "Quick start" in home.text
    for part in PARTS:  # the "written so far" table links every part page
        assert f'href="{page_path(part)}"' in home.dom, (
            f"home page does not link part {part.number}"
        )


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_part_page(browser: Browser, part: Part) -> None:
    page = browser.dom(page_path(part))
    assert f"Part {part.number} — " in page.text  # the nav title

    for snippet in code_snippets(part):
        assert snippet in page.text, f"code not rendered on {page.url}: {snippet!r}"
    texts = output_texts(part)
    assert texts, f"{part.notebook.name} has no stored text output: run `make checkpoints`"
    for text in texts:
        assert text in page.text, f"stored output not rendered on {page.url}: {text!r}"
    images = page.dom.count('src="data:image/png;base64,')
    assert images >= png_outputs(part), f"{page.url} shows {images} of {png_outputs(part)} images"

    bar = _BAR.search(page.dom)
    assert bar is not None, f"{page.url} has no links bar"
    bar_text = visible_text(bar.group(1))
    for label in ("Start:", "End:", "Changes in this part"):
        assert label in bar_text, f"links bar on {page.url} lacks {label!r}: {bar_text!r}"
    assert ("← Part" in bar_text) == (part.number > 1)
    assert ("Part " + str(part.number + 1) + " →" in bar_text) == (part.number < len(PARTS))
    hrefs = _HREF.findall(bar.group(1))
    assert f"../{part.name}-changes/" in hrefs
    for href in hrefs:
        assert browser.site_file(page.url, href).is_file(), f"broken link {href} on {page.url}"


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_changes_page(browser: Browser, part: Part) -> None:
    page = browser.dom(changes_path(part))
    assert _BAR.search(page.dom), f"{page.url} has no links bar"
    assert 'id="start"' in page.dom and 'id="end"' in page.dom
    before, after = checkpoint_files(part.number - 1), checkpoint_files(part.number)
    if before is None or after is None:
        assert "not generated yet" in page.text
        return
    changed = sorted(
        path
        for path in before.keys() | after.keys()
        if path not in before
        or path not in after
        or before[path].read_bytes() != after[path].read_bytes()
    )
    if not changed:
        assert "changes no application file" in page.text
        return
    assert "language-diff" in page.dom, f"{page.url} shows no diff"
    for path in changed:
        assert path in page.text, f"{page.url} does not show the change to {path}"
    headers = [f"+++ b/{path}" for path in changed if path in after]
    headers += [f"--- a/{path}" for path in changed if path not in after]
    for header in headers:
        assert header in page.text, f"{page.url} lacks the diff header {header!r}"


def test_file_changes_make_a_unified_diff(tmp_path: Path) -> None:
    from workbook.diffs import file_changes

    def tree(name: str, files: dict[str, str | bytes]) -> dict[str, Path]:
        paths = {}
        for relative, content in files.items():
            path = tmp_path / name / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
            paths[relative] = path
        return paths

    before = tree(
        "a", {"same.py": "x\n", "gone.py": "y\n", "edit.py": "1\n2\n", "logo.png": b"\x89\xff"}
    )
    after = tree(
        "b", {"same.py": "x\n", "edit.py": "1\n3", "new/empty.py": "", "logo.png": b"\x89\xfe"}
    )
    changes = {change.path: change for change in file_changes(before, after)}
    assert list(changes) == ["edit.py", "gone.py", "logo.png", "new/empty.py"]
    assert [changes[p].kind for p in changes] == ["changed", "removed", "changed", "added"]
    assert changes["edit.py"].diff == (
        "--- a/edit.py\n+++ b/edit.py\n@@ -1,2 +1,2 @@\n 1\n-2\n+3\n\\ No newline at end of file\n"
    )
    assert (changes["edit.py"].added, changes["edit.py"].removed) == (1, 1)
    assert changes["gone.py"].diff == "--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-y\n"
    assert changes["logo.png"].diff.endswith("Binary file\n")
    assert changes["new/empty.py"].diff == "--- /dev/null\n+++ b/new/empty.py\n(empty file)\n"


def test_screenshot_of_a_part_page(browser: Browser, tmp_path: Path) -> None:
    assert PARTS, "no part to take a screenshot of"
    folder = Path(os.environ.get("SITE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{PARTS[0].notebook.stem}.png"
    target.unlink(missing_ok=True)
    browser.screenshot(page_path(PARTS[0]), target)
    with target.open("rb") as png:
        header = png.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert target.stat().st_size > 20_000, f"{target} looks blank"
