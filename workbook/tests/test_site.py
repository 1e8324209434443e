"""The documentation site: built with ``mkdocs build --strict``, checked in headless Chromium.

One build per session, served from a local ``http.server``; every page is loaded by the
real browser (``chromium --headless --dump-dom``) and checked in the DOM it renders.
Set ``SITE_SCREENSHOT_DIR`` to keep the screenshot somewhere other than pytest's tmp dir.
"""

from __future__ import annotations

import functools
import html
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
from urllib.parse import unquote, urljoin, urlsplit

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
PHONE, DESKTOP = 390, 1280  # CSS pixels
LAYOUT_HARNESS = "__layout-check.html"  # written into the test's site only
LAYOUT_HTML = """<!doctype html>
<html><body>
<iframe id="page" style="border:0;height:844px"></iframe>
<pre id="result"></pre>
<script>
const query = new URLSearchParams(location.search);
const frame = document.getElementById("page");
frame.style.width = query.get("w") + "px";
frame.addEventListener("load", () => setTimeout(() => {
  const doc = frame.contentDocument, win = frame.contentWindow;
  const widths = (selector) => [...doc.querySelectorAll(selector)]
    .map((el) => el.getBoundingClientRect().width);
  const main = doc.querySelector(".md-content").getBoundingClientRect().width;
  // A copy button covers code if it reaches below the top of the code's text.
  let covered = 0, buttons = 0;
  for (const nav of doc.querySelectorAll("pre > .md-code__nav")) {
    const code = nav.parentElement.querySelector(":scope > code");
    if (!code || !nav.getBoundingClientRect().height) continue;
    buttons += 1;
    const textTop = code.getBoundingClientRect().top
      + parseFloat(win.getComputedStyle(code).paddingTop);
    if (nav.getBoundingClientRect().bottom > textTop + 1) covered += 1;
  }
  document.getElementById("result").textContent = JSON.stringify({
    viewport: win.innerWidth,
    scrollWidth: doc.documentElement.scrollWidth,
    content: main,
    prompts: widths(".jp-InputPrompt"),
    code: widths(".jp-CodeCell .highlight-ipynb"),
    buttons: buttons,
    covered: covered,
  });
}, 1500));
frame.src = query.get("p");
</script>
</body></html>
"""


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

    def screenshot(self, path: str, target: Path, width: int = DESKTOP) -> None:
        url = urljoin(self.base_url, path)
        result = self._run(url, f"--screenshot={target}", f"--window-size={width},2000")
        if isinstance(result, str):
            pytest.fail(result)
        if result.returncode != 0 or not target.is_file():
            pytest.fail(
                f"chromium could not screenshot {url} (exit {result.returncode}):\n{result.stderr}"
            )

    def layout(self, path: str, width: int) -> dict[str, Any]:
        """Measurements of the page at ``path`` laid out ``width`` CSS pixels wide.

        The page is loaded in a same-origin iframe of that width (a real viewport for its
        media queries); a script in the harness page measures it and writes JSON into the
        DOM that ``--dump-dom`` returns.
        """
        harness = self.site_dir / LAYOUT_HARNESS
        if not harness.is_file():
            harness.write_text(LAYOUT_HTML, encoding="utf-8")
        url = urljoin(self.base_url, f"{LAYOUT_HARNESS}?w={width}&p=/{path}")
        result = self._run(url, "--dump-dom", "--virtual-time-budget=20000")
        if isinstance(result, str):
            pytest.fail(result)
        found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.DOTALL)
        if result.returncode != 0 or found is None or not found[1].strip():
            pytest.fail(f"no layout measured for {url}:\n{result.stderr[-2000:]}")
        measured: dict[str, Any] = json.loads(html.unescape(found[1]))
        return measured

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


def build_site(root: Path, site: Path) -> None:
    """``mkdocs build --strict`` of the project at ``root`` into ``site``."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    command = [str(mkdocs)] if mkdocs.is_file() else [sys.executable, "-m", "mkdocs"]
    # The hooks import workbook.* from the project being built (a fixture copy, say).
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    build_site(REPO_ROOT, site)
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


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_screenshot_of_a_part_page(browser: Browser, tmp_path: Path, width: int) -> None:
    assert PARTS, "no part to take a screenshot of"
    folder = Path(os.environ.get("SITE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{PARTS[0].notebook.stem}-{width}.png"
    target.unlink(missing_ok=True)
    browser.screenshot(page_path(PARTS[0]), target, width)
    with target.open("rb") as png:
        header = png.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    png_width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert (png_width, height) == (width, 2000)
    assert target.stat().st_size > 20_000, f"{target} looks blank"


# --- the built site's links, search index, weight and reading order -------------------

_REF_ATTRS = {"a": "href", "img": "src", "link": "href", "script": "src", "source": "src"}
# Bytes: a part page. Most of a heavy page is collapsed new files, plain text behind a
# <details>; a collapsed "%%code PATH --diff" cell shows only its diff (the file is in the
# checkpoint). Split a part that outgrows this rather than raise it.
SIZE_LIMIT = 450_000
# Bytes of search-index text per page: prose runs to ~25 KB for the longest part; a code dump
# or the outputs of a page would be several times that. (A limit on the whole index would
# only measure how many parts are written.)
SEARCH_TEXT_PER_PAGE_LIMIT = 40_000
SEARCH_MARKERS = ("¶", "Copied!", "Download the notebook")  # the last: the links bar
_PROMPT = re.compile(r"(In|Out)\s*\[\s*\d*\s*\]:")


class _PageRefs(HTMLParser):
    """The ids of a built page, the URLs it refers to and its images."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []
        self.images: list[tuple[str, str]] = []  # (src, alt)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if values.get(key):
                self.ids.add(str(values[key]))
        ref = values.get(_REF_ATTRS.get(tag, ""))
        if ref is not None:
            self.refs.append((tag, ref))
        if tag == "img":
            self.images.append((values.get("src") or "", (values.get("alt") or "").strip()))


@functools.cache
def page_refs(path: Path) -> _PageRefs:
    parser = _PageRefs()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def broken_links(site: Path) -> list[str]:
    """Every internal href/src of every built page that leads to no file or no anchor."""
    site = site.resolve()
    problems = []
    for page in sorted(site.rglob("*.html")):
        where = page.relative_to(site).as_posix()
        for tag, ref in page_refs(page).refs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc or not (parts.path or parts.fragment):
                continue  # another site, mailto:, data:…; or href="" (this page)
            base = page.parent
            if parts.path.startswith("/"):
                # Only the 404 page may: a host serves it at any depth, so MkDocs makes its
                # links absolute from the site root.
                if where != "404.html":
                    problems.append(f"{where}: <{tag}> {ref!r} is absolute")
                    continue
                base = site
            target = (base / unquote(parts.path.lstrip("/"))).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(site) or not target.is_file():
                problems.append(f"{where}: <{tag}> {ref!r} leads to no file")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in page_refs(target).ids
            ):
                problems.append(f"{where}: <{tag}> {ref!r}: no such anchor")
    return problems


def built_page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text(encoding="utf-8")


def test_every_internal_link_and_anchor_resolves(site_dir: Path) -> None:
    pages = list(site_dir.rglob("*.html"))
    assert len(pages) > 2 * len(PARTS), "the crawl found too few pages"
    problems = broken_links(site_dir)
    assert not problems, f"{len(problems)} broken links:\n" + "\n".join(problems[:40])


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_notebook_links_lead_to_pages(site_dir: Path, part: Part) -> None:
    """Notebooks link their siblings as .ipynb (right in JupyterLab); the site, to pages."""
    dom = built_page(site_dir, page_path(part))
    for tag in re.findall(r"<a\b[^>]*>", dom):
        href = re.search(r'href="([^"]*)"', tag)
        if href and re.search(r"\.ipynb(#|$)", href[1]) and not href[1].startswith("http"):
            assert " download" in tag, f"{page_path(part)} links a notebook file: {tag}"
    sources = "".join("".join(c["source"]) for c in notebook_cells(part))
    for other in PARTS:
        if f"({other.notebook.name}" in sources:  # a Markdown link to another part
            assert f'href="../{other.notebook.stem}/' in dom, (
                f"{page_path(part)} does not link {page_path(other)}"
            )


class _Headings(HTMLParser):
    """Headings with an id (and their text without the permalink) in a page's article."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[str, str]] = []
        self._current: tuple[str, list[str]] | None = None
        self._in_permalink = False
        self._in_article = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "article":
            self._in_article = True
        elif self._in_article and re.fullmatch(r"h[2-6]", tag) and values.get("id"):
            self._current = (str(values["id"]), [])
        elif tag == "a" and "headerlink" in (values.get("class") or ""):
            self._in_permalink = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._in_article = False
        elif tag == "a":
            self._in_permalink = False
        elif self._current is not None and re.fullmatch(r"h[2-6]", tag):
            self.headings.append((self._current[0], normalize("".join(self._current[1]))))
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._in_permalink:
            self._current[1].append(data)


def toc_entries(dom: str) -> list[tuple[str, str]]:
    """(anchor, title) of the page's table of contents: its nav links within the page."""
    return [
        (anchor, normalize(visible_text(text)))
        for anchor, text in re.findall(
            r'<a href="#([^"]*)" class="md-nav__link">(.*?)</a>', dom, re.DOTALL
        )
    ]


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_table_of_contents_names_every_heading(site_dir: Path, part: Part) -> None:
    """Headings with inline code ("… with `Protocol`") keep every word and their anchor."""
    dom = built_page(site_dir, page_path(part))
    parser = _Headings()
    parser.feed(dom)
    assert parser.headings, f"{page_path(part)} has no section headings"
    toc = toc_entries(dom)
    for heading in parser.headings:
        assert heading in toc, f"{page_path(part)}: TOC lacks {heading}; it has {toc}"


def test_search_index_holds_prose_not_code(site_dir: Path) -> None:
    index_file = site_dir / "search" / "search_index.json"
    entries = json.loads(index_file.read_text(encoding="utf-8"))["docs"]
    per_page: dict[str, int] = {}
    for entry in entries:
        page = entry["location"].split("#")[0]
        per_page[page] = per_page.get(page, 0) + len(entry["title"]) + len(entry["text"])
    for page, size in per_page.items():
        assert size < SEARCH_TEXT_PER_PAGE_LIMIT, (
            f"{page or 'home'}: {size} bytes of search text; code got into it?"
        )
    for entry in entries:
        for key in ("title", "text"):
            for marker in SEARCH_MARKERS:
                assert marker not in entry[key], f"{entry['location']}: {key} has {marker!r}"
            assert not _PROMPT.search(entry[key]), f"{entry['location']}: {key} has a prompt"
    for part in PARTS:
        texts = [e["text"] for e in entries if e["location"].startswith(page_path(part))]
        sections = [e for e in entries if e["location"].startswith(page_path(part) + "#")]
        assert sections, f"{page_path(part)} has no section in the search index"
        # Prose belongs to its section: the page's own entry (before its first heading)
        # must not collect the markdown cells that follow code cells.
        top = [e["text"] for e in entries if e["location"] == page_path(part)]
        assert all(len(text) < 300 for text in top), f"{page_path(part)}: {top}"
        for snippet in code_snippets(part):
            assert not any(snippet in text for text in texts), (
                f"code of {part.notebook.name} is in the search index: {snippet!r}"
            )


def test_part_pages_are_light(site_dir: Path) -> None:
    """The notebook CSS is served once, not inlined into every page."""
    assert (site_dir / "stylesheets" / "jupyter.css").is_file()
    for part in PARTS:
        page = site_dir / page_path(part) / "index.html"
        size = page.stat().st_size
        assert size < SIZE_LIMIT, f"{page_path(part)} weighs {size} bytes"
        dom = page.read_text(encoding="utf-8")
        styles = re.findall(r"<style\b.*?</style>", dom, re.DOTALL)
        assert sum(map(len, styles)) < 2_000, f"{page_path(part)} inlines CSS"
        assert "stylesheets/jupyter.css" in dom, f"{page_path(part)} lacks the notebook CSS"


def footer_links(dom: str) -> dict[str, str]:
    return dict(
        (kind, href)
        for href, kind in re.findall(
            r'<a href="([^"]*)" class="md-footer__link md-footer__link--(prev|next)"', dom
        )
    )


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_reading_order(site_dir: Path, part: Part) -> None:
    """The footer leads from part N to part N+1; the nav lists the parts in order."""
    dom = built_page(site_dir, page_path(part))
    links = footer_links(dom)
    index = PARTS.index(part)
    if index > 0:
        assert links.get("prev") == f"../{PARTS[index - 1].notebook.stem}/"
    if index + 1 < len(PARTS):
        assert links.get("next") == f"../{PARTS[index + 1].notebook.stem}/"
    else:
        assert "next" not in links
    changes = footer_links(built_page(site_dir, changes_path(part)))
    assert changes.get("prev") == f"../{part.notebook.stem}/"
    nav = re.findall(r'href="\.\./(part-\d\d-[a-z0-9-]+)/" class="md-nav__link"', dom)
    order = [n for n in dict.fromkeys(nav) if not n.endswith("-changes")]
    assert order == [p.notebook.stem for p in PARTS if p != part], order


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_images_have_alt_text(site_dir: Path, part: Part) -> None:
    for path in (page_path(part), changes_path(part)):
        for src, alt in page_refs(site_dir / path / "index.html").images:
            assert alt, f"{path}: an image has no alt text: {src[:60]}"


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.name)
def test_part_page_offers_the_notebook(site_dir: Path, part: Part) -> None:
    dom = built_page(site_dir, page_path(part))
    download = site_dir / page_path(part) / part.notebook.name
    assert download.read_bytes() == part.notebook.read_bytes()
    assert f'<a href="{part.notebook.name}" download>' in dom
    assert "Run it locally: <code>make lab</code>, then open" in dom
    config = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    repo_url = re.search(r"^repo_url: (\S+)", config, re.MULTILINE)
    assert repo_url, "mkdocs.yml has no repo_url"
    assert f'href="{repo_url[1]}"' in dom, "no repository link"
    edit = re.search(r'<a href="([^"]*)" title="Edit this page"', dom)
    assert edit and edit[1].startswith(repo_url[1]), "no edit link"
    assert edit[1].endswith(f"/notebooks/{part.notebook.name}"), edit[1]


def _layouts(browser: Browser, width: int) -> dict[str, dict[str, Any]]:
    paths = [*map(page_path, PARTS), *map(changes_path, PARTS)]
    with ThreadPoolExecutor(max_workers=BROWSERS) as pool:
        return dict(zip(paths, pool.map(lambda p: browser.layout(p, width), paths), strict=True))


def test_phone_layout(browser: Browser) -> None:
    """At 390 px the code gets the width, nothing scrolls sideways, no button covers code."""
    layouts = _layouts(browser, PHONE)
    for path, layout in layouts.items():
        assert layout["viewport"] == PHONE, layout
        assert layout["scrollWidth"] <= PHONE, f"{path} scrolls sideways at {PHONE} px: {layout}"
        assert max(layout["prompts"], default=0) == 0, f"{path} shows In [n] prompts: {layout}"
        for width in layout["code"]:
            assert width >= 0.95 * layout["content"] - 40, f"{path}: narrow code: {layout}"
        assert layout["covered"] == 0, f"{path}: a copy button covers code: {layout}"
    assert any(layout["buttons"] for layout in layouts.values()), "no copy button measured"


def test_desktop_layout(browser: Browser) -> None:
    layout = browser.layout(page_path(PARTS[0]), DESKTOP)
    assert layout["scrollWidth"] <= DESKTOP, layout
    assert max(layout["prompts"]) > 0, "the In [n] prompts belong on a wide screen"


# --- a site built from fixture notebooks: collapsed cells, diagrams, links, alt text ---

TINY_PNG = (  # a one-pixel PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TINY_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    '<rect width="10" height="10"/></svg>\n'
)


def _notebook(cells: list[dict[str, Any]]) -> str:
    for cell in cells:
        cell.setdefault("metadata", {})
        if cell["cell_type"] == "code":
            cell.setdefault("execution_count", 1)
            cell.setdefault("outputs", [])
    return json.dumps(
        {
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def _image_output(text: str) -> dict[str, Any]:
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": TINY_PNG, "text/plain": [text]},
    }


@pytest.fixture(scope="session")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site of a copy of the project whose notebooks are two small fixtures."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy2(REPO_ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(REPO_ROOT / "docs", root / "docs")
    shutil.copytree(
        REPO_ROOT / "workbook",
        root / "workbook",
        ignore=shutil.ignore_patterns("tests", "__pycache__"),
    )
    notebooks = root / "notebooks"
    (notebooks / "diagrams").mkdir(parents=True)
    (notebooks / "diagrams" / "part-01-flow.svg").write_text(TINY_SVG, encoding="utf-8")
    one: list[dict[str, Any]] = [
        {"cell_type": "markdown", "id": "intro", "source": "# Part 1 — Alpha\n\nProse."},
        {
            "cell_type": "markdown",
            "id": "diagram",
            "source": "![How a request flows](diagrams/part-01-flow.svg)",
        },
        {
            "cell_type": "code",
            "id": "hidden",
            "metadata": {"jupyter": {"source_hidden": True}},
            "source": "%%code tests/test_api.py\ndef test_ok() -> None:\n    assert True\n",
            "outputs": [
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": "✎ tests/test_api.py — new file, 2 lines\n",
                }
            ],
        },
        {
            "cell_type": "code",
            "id": "hidden-diff",
            "metadata": {"jupyter": {"source_hidden": True}},
            "source": "%%code app/settings.py --diff\nKEPT_AS_IT_WAS = 0\nADDED_BY_THE_PART = 1\n",
            "outputs": [
                {
                    "output_type": "stream",
                    "name": "stdout",
                    "text": "--- a/app/settings.py\n+++ b/app/settings.py\n"
                    "+ADDED_BY_THE_PART = 1\n",
                }
            ],
        },
        {
            "cell_type": "code",
            "id": "plot-alt",
            "metadata": {"alt": "Bar chart of request latency"},
            "source": "plot()",
            "outputs": [_image_output("<Figure>")],
        },
        {
            "cell_type": "code",
            "id": "plot-plain",
            "source": "plot()",
            "outputs": [_image_output("<Figure>")],
        },
        {
            "cell_type": "markdown",
            "id": "next",
            "source": "## With `code` in it\n\n**Next:** [Part 2 — Beta](part-02-beta.ipynb), "
            "[its second section](part-02-beta.ipynb#The-second-heading); "
            "[the quick start](../docs/quickstart.md#work-through-a-part).",
        },
    ]
    two: list[dict[str, Any]] = [
        {"cell_type": "markdown", "id": "intro", "source": "# Part 2 — Beta\n\nProse."},
        {"cell_type": "markdown", "id": "second", "source": "## The second heading\n\nMore."},
        {"cell_type": "code", "id": "code", "source": "x = 1"},
    ]
    (notebooks / "part-01-alpha.ipynb").write_text(_notebook(one), encoding="utf-8")
    (notebooks / "part-02-beta.ipynb").write_text(_notebook(two), encoding="utf-8")
    site = tmp_path_factory.mktemp("fixture-site")
    build_site(root, site)
    return site


def test_fixture_site_links_images_and_anchors(fixture_site: Path) -> None:
    problems = broken_links(fixture_site)
    assert not problems, "\n".join(problems)
    dom = built_page(fixture_site, "parts/part-01-alpha/")
    assert (fixture_site / "parts" / "diagrams" / "part-01-flow.svg").read_text() == TINY_SVG
    images = page_refs(fixture_site / "parts/part-01-alpha/index.html").images
    assert ("../diagrams/part-01-flow.svg", "How a request flows") in images
    assert 'href="../part-02-beta/"' in dom
    assert 'href="../part-02-beta/#the-second-heading"' in dom
    assert 'href="../../quickstart/#work-through-a-part"' in dom
    assert ("with-code-in-it", "With code in it") in toc_entries(dom)


def test_fixture_site_plots_have_alt_text(fixture_site: Path) -> None:
    images = page_refs(fixture_site / "parts/part-01-alpha/index.html").images
    alts = [alt for src, alt in images if src.startswith("data:image/png")]
    assert alts == ["Bar chart of request latency", "Plot: output of the cell"]


def test_fixture_site_collapsed_cell(fixture_site: Path) -> None:
    """A cell collapsed in JupyterLab is collapsed on the site; its output stays visible."""
    dom = built_page(fixture_site, "parts/part-01-alpha/")
    found = re.search(r'<details class="sw-hidden-input">(.*?)</details>', dom, re.DOTALL)
    assert found, "the collapsed cell is not in a <details>"
    summary = re.search(r"<summary>(.*?)</summary>", found[1], re.DOTALL)
    assert summary and summary[1] == "%%code tests/test_api.py"
    assert "test_ok" in visible_text(found[1]), "the input is not inside the <details>"
    assert "✎ tests/test_api.py — new file" in visible_text(dom[found.end() :])
    assert dom.count('class="sw-hidden-input"') == 2, "only the collapsed cells are collapsed"


def test_fixture_site_collapsed_diff_cell_shows_the_diff_not_the_whole_file(
    fixture_site: Path,
) -> None:
    """A collapsed "%%code PATH --diff" cell: its diff is the output; the whole file would
    only make the page heavier (it is in the checkpoint)."""
    text = visible_text(built_page(fixture_site, "parts/part-01-alpha/"))
    assert "%%code app/settings.py --diff" in text
    assert "+ADDED_BY_THE_PART = 1" in text
    assert "KEPT_AS_IT_WAS" not in text


def test_line_spans_close_and_reopen_tags_across_lines() -> None:
    from workbook.site_html import line_spans

    assert line_spans('<span class="ansi-red-fg">a\nb</span>\n') == (
        '<span class="sw-line"><span class="ansi-red-fg">a\n</span></span>'
        '<span class="sw-line"><span class="ansi-red-fg">b</span>\n</span>'
    )
    assert line_spans("+x\n\n-y") == (
        '<span class="sw-line">+x\n</span><span class="sw-line">\n</span>'
        '<span class="sw-line">-y</span>'
    )


def test_plots_are_served_in_a_palette_when_that_is_lighter() -> None:
    import base64
    import io

    from PIL import Image, ImageDraw

    from workbook.site_html import lighter_png

    # A plot-like image: white, antialiased lines of two colours, as matplotlib draws them.
    image = Image.new("RGBA", (320, 120), "white")
    draw = ImageDraw.Draw(image)
    for offset in range(0, 120, 6):
        draw.line((0, offset, 320, 120 - offset), fill=(31, 119, 180), width=2)
        draw.line((0, 120 - offset, 320, offset), fill=(255, 127, 14), width=1)
    image = image.resize((640, 240), Image.Resampling.LANCZOS)  # antialiasing: many shades
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    src = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()

    lighter = lighter_png(src)

    assert len(lighter) < len(src) / 2
    served = Image.open(io.BytesIO(base64.b64decode(lighter.split(",", 1)[1])))
    assert served.mode == "P" and served.size == (640, 240)
    assert lighter_png("diagrams/part-11-request-path.svg") == "diagrams/part-11-request-path.svg"
