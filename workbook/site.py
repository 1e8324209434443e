"""MkDocs hooks: one page per part, its changes page, and the links between them.

Registered in ``mkdocs.yml`` (``hooks: [workbook/site.py]``). For every
``notebooks/part-NN-<slug>.ipynb`` the site gets

* ``parts/part-NN-<slug>/``: the notebook with its stored outputs (rendered by
  mkdocs-jupyter, never executed), headed by a bar linking the start and end
  checkpoints, the changes page and the previous/next parts;
* ``parts/part-NN-changes/``: generated here: where the part starts and ends, which
  application files it adds, changes and removes, and the unified diff between the two
  checkpoints.

The notebook pages' HTML is then adapted for the site by ``workbook/site_html.py``
(links, shared CSS, search, TOC, collapsed cells, alt text); the notebook itself is also
copied next to its page for download, and ``notebooks/diagrams/`` to ``parts/diagrams/``.

The "Parts" section of the nav is filled in ``on_config``, so adding a notebook adds its
pages without touching ``mkdocs.yml``. ``docs/index.md`` may contain the marker
``<!-- parts:written -->``, replaced by a table of the parts written so far.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # MkDocs loads hooks by path, not as a package
    sys.path.insert(0, str(REPO_ROOT))

from mkdocs.config.defaults import MkDocsConfig  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.livereload import LiveReloadServer  # noqa: E402
from mkdocs.plugins import event_priority  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402
from mkdocs.structure.nav import Navigation  # noqa: E402
from mkdocs.structure.pages import Page  # noqa: E402
from mkdocs.structure.toc import get_toc  # noqa: E402
from mkdocs.utils import get_relative_url  # noqa: E402
from mkdocs_jupyter.utils import slugify  # type: ignore[import-untyped]  # noqa: E402

from workbook.diffs import file_changes  # noqa: E402
from workbook.parts import (  # noqa: E402
    APP_PATHS,
    CHECKPOINTS_DIR,
    NOTEBOOKS_DIR,
    Part,
    all_parts,
    app_files,
    checkpoint_dir,
)
from workbook.site_html import process_changes, process_notebook  # noqa: E402

log = logging.getLogger("mkdocs.hooks.workbook")

PARTS_SECTION = "Parts"
# The notebook CSS mkdocs-jupyter inlines into every page, served once (see on_post_build).
NOTEBOOK_CSS = "stylesheets/jupyter.css"
# Images the notebooks reference as ![alt](diagrams/<name>.svg), next to the notebooks.
DIAGRAMS = "diagrams"
PARTS_MARKER = "<!-- parts:written -->"
BAR_CLASS = "sw-part-bar"


@dataclass(frozen=True)
class PartPages:
    """The two site pages of one part."""

    part: Part
    title: str  # "Part 3 — Repository pattern"

    @property
    def notebook_uri(self) -> str:
        return f"parts/{self.part.notebook.name}"

    @property
    def download_uri(self) -> str:
        """The .ipynb itself, next to its page (parts/part-NN-<slug>/part-NN-<slug>.ipynb)."""
        return f"parts/{self.part.notebook.stem}/{self.part.notebook.name}"

    @property
    def changes_uri(self) -> str:
        return f"parts/{self.part.name}-changes.md"

    @property
    def changes_title(self) -> str:
        return f"Changes in part {self.part.number}"


@dataclass(frozen=True)
class Checkpoint:
    """One end of a part: a stored application state, or the empty start."""

    number: int  # the part after which this state exists; 0 is the empty start
    root: Path | None

    @property
    def label(self) -> str:
        """Where it lives, for a reader with a clone of the repository."""
        if self.root is None:
            return "an empty workspace"
        if self.root == REPO_ROOT:
            return "the repository root"
        return f"{self.root.relative_to(REPO_ROOT).as_posix()}/"

    @property
    def short_label(self) -> str:
        if self.root is None:
            return "empty workspace"
        if self.root == REPO_ROOT:
            return "repository root"
        return f"{self.root.relative_to(REPO_ROOT).as_posix()}/"

    @property
    def exists(self) -> bool:
        if self.root is None:
            return True
        return any((self.root / top).exists() for top in APP_PATHS)

    def files(self) -> dict[str, Path]:
        return app_files(self.root) if self.exists else {}


class NotebookPage(File):
    """A notebook outside ``docs_dir`` published as a page; mkdocs-jupyter renders it.

    Added after mkdocs-jupyter's own ``on_files`` (which wraps the notebooks it finds in
    ``docs_dir``); being a documentation page is all that wrapper would add.
    """

    def is_documentation_page(self) -> bool:
        return True


# Filled in on_config for the build in progress (`mkdocs serve` reruns on_config).
_pages: list[PartPages] = []
# The distinct inline stylesheets of the notebook pages, collected while rendering them.
_notebook_styles: list[str] = []


# --- titles, checkpoints, diffs ------------------------------------------------------

_PART_PREFIX = re.compile(r"^part\s+\d+\s*[—–:.\-]\s*", re.IGNORECASE)


def part_title(part: Part) -> str:
    """``Part 3 — Repository pattern``, whether or not the notebook's heading says "Part 3"."""
    title = _PART_PREFIX.sub("", part.title).strip() or part.slug.replace("-", " ")
    return f"Part {part.number} — {title}"


def start_checkpoint(part: Part) -> Checkpoint:
    return Checkpoint(part.number - 1, checkpoint_dir(part.number - 1))


def end_checkpoint(part: Part) -> Checkpoint:
    return Checkpoint(part.number, checkpoint_dir(part.number))


def _fence(text: str) -> str:
    """A backtick fence longer than any backtick run inside ``text``."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _code(text: str) -> str:
    """Inline code that survives backticks inside ``text``."""
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# --- the changes page ------------------------------------------------------------------


def _checkpoint_section(heading: str, anchor: str, checkpoint: Checkpoint, intro: str) -> str:
    out = [f"## {heading} {{#{anchor}}}", ""]
    if checkpoint.root is None:
        out += [f"{intro} an empty workspace: there is no application yet.", ""]
        return "\n".join(out)
    location = (
        "the repository root (the finished application so far: "
        + ", ".join(_code(top + ("/" if top != ".importlinter" else "")) for top in APP_PATHS)
        + ")"
        if checkpoint.root == REPO_ROOT
        else _code(checkpoint.label)
    )
    if not checkpoint.exists:
        out += [
            f"{intro} {location}, the application after part {checkpoint.number}: "
            "**not generated yet** (`make checkpoints` records it).",
            "",
        ]
        return "\n".join(out)
    files = checkpoint.files()
    out += [
        f"{intro} {location}, the application after part {checkpoint.number} ({len(files)} files).",
        "",
        f'??? info "The {len(files)} files of {checkpoint.label}"',
        "",
    ]
    out += [f"    - {_code(path)}" for path in files]
    out.append("")
    return "\n".join(out)


def changes_markdown(pages: PartPages) -> str:
    """The Markdown of a part's changes page."""
    part = pages.part
    start, end = start_checkpoint(part), end_checkpoint(part)
    notebook_link = f"[{pages.title}]({part.notebook.name})"
    out = [
        f"# {pages.changes_title}: {_PART_PREFIX.sub('', part.title).strip()}",
        "",
        f"What {notebook_link} writes: the difference between the application it starts "
        "from and the one it ends with. Files are compared across "
        + ", ".join(_code(top) for top in APP_PATHS)
        + ".",
        "",
        _checkpoint_section("Start checkpoint", "start", start, "The part starts from"),
        _checkpoint_section("End checkpoint", "end", end, "The part ends with"),
        "## Files {#files}",
        "",
    ]
    if not end.exists or not start.exists:
        missing = [c.label for c in (start, end) if not c.exists]
        verb = "is" if len(missing) == 1 else "are"
        out += [
            f"No diff yet: {' and '.join(missing)} {verb} not generated yet "
            "(`make checkpoints` records the checkpoints).",
            "",
        ]
        return "\n".join(out)
    changes = file_changes(start.files(), end.files())
    if not changes:
        out += ["This part changes no application file.", ""]
        return "\n".join(out)
    counts = {
        kind: sum(1 for c in changes if c.kind == kind) for kind in ("added", "changed", "removed")
    }
    out += [
        f"{counts['added']} added, {counts['changed']} changed, {counts['removed']} removed.",
        "",
        "| File | Change | Lines |",
        "| --- | --- | --- |",
    ]
    for index, change in enumerate(changes, start=1):
        out.append(
            f"| [{_code(change.path)}](#diff-{index}) | {change.kind} "
            f"| +{change.added} −{change.removed} |"
        )
    out += ["", "## Diff {#diff}", ""]
    for index, change in enumerate(changes, start=1):
        fence = _fence(change.diff)
        out += [
            f"### {_code(change.path)} ({change.kind}) {{#diff-{index}}}",
            "",
            f"{fence}diff",
            change.diff.rstrip("\n"),
            fence,
            "",
        ]
    return "\n".join(out)


# --- the links bar -----------------------------------------------------------------------


def _link(href: str, text: str, *, rel: str = "", title: str = "", download: bool = False) -> str:
    attrs = f' href="{html.escape(href)}"'
    if download:
        attrs += " download"
    if rel:
        attrs += f' rel="{rel}"'
    if title:
        attrs += f' title="{html.escape(title)}"'
    return f"<a{attrs}>{html.escape(text)}</a>"


def part_bar(pages: PartPages, page_uri: str, files: Files) -> str:
    """The bar on top of a part's pages: checkpoints, the other page, previous and next part.

    On the notebook page it links the changes page; on the changes page, the notebook.
    Previous/next lead to the same kind of page of the neighbouring parts.
    """
    on_changes = page_uri == pages.changes_uri
    here = files.get_file_from_path(page_uri)
    if here is None:
        raise PluginError(f"workbook/site.py: {page_uri} is missing from the site")

    def url(src_uri: str, anchor: str = "") -> str:
        target = files.get_file_from_path(src_uri)
        if target is None:
            raise PluginError(f"workbook/site.py: {src_uri} is missing from the site")
        return get_relative_url(target.url, here.url) + anchor

    def state(checkpoint: Checkpoint) -> str:
        return checkpoint.short_label + ("" if checkpoint.exists else " (not generated yet)")

    start, end = start_checkpoint(pages.part), end_checkpoint(pages.part)
    items = [
        _link(url(pages.changes_uri, "#start"), f"Start: {state(start)}", title="Start checkpoint"),
        _link(url(pages.changes_uri, "#end"), f"End: {state(end)}", title="End checkpoint"),
        _link(url(pages.notebook_uri), "The notebook")
        if on_changes
        else _link(url(pages.changes_uri), "Changes in this part"),
        _link(url(pages.download_uri), "Download the notebook", download=True),
    ]

    def neighbour(other: PartPages, text: str, rel: str) -> str:
        uri = other.changes_uri if on_changes else other.notebook_uri
        title = f"{other.changes_title}" if on_changes else other.title
        return _link(url(uri), text, rel=rel, title=title)

    index = _pages.index(pages)
    pager = []
    if index > 0:
        pager.append(neighbour(_pages[index - 1], f"← Part {pages.part.number - 1}", "prev"))
    if index + 1 < len(_pages):
        pager.append(neighbour(_pages[index + 1], f"Part {pages.part.number + 1} →", "next"))
    run = (
        f'<p class="{BAR_CLASS}__run" data-search-exclude>'
        "Run it locally: <code>make lab</code>, then open "
        f"<code>notebooks/{html.escape(pages.part.notebook.name)}</code>.</p>\n"
    )
    return (
        # Navigation, not content: kept out of the search index (Material's attribute).
        f'<nav class="{BAR_CLASS}" aria-label="Part {pages.part.number}" data-search-exclude>'
        f'<span class="{BAR_CLASS}__links">{"".join(items)}</span>'
        f'<span class="{BAR_CLASS}__pager">{"".join(pager)}</span>'
        "</nav>\n" + run
    )


def written_parts_markdown() -> str:
    """A table of the parts written so far, for the home page."""
    if not _pages:
        return "No part is written yet."
    rows = [
        f"{len(_pages)} of 24 parts are written so far:",
        "",
        "| Part | Notebook | Changes |",
        "| --- | --- | --- |",
    ]
    for pages in _pages:
        title = _PART_PREFIX.sub("", pages.part.title).strip()
        rows.append(
            f"| {pages.part.number} | [{title}]({pages.notebook_uri}) "
            f"| [{pages.changes_title.lower()}]({pages.changes_uri}) |"
        )
    return "\n".join(rows)


# --- MkDocs events -------------------------------------------------------------------


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Collect the parts and list them in the nav's "Parts" section."""
    _pages[:] = [PartPages(part, part_title(part)) for part in all_parts()]
    _notebook_styles.clear()
    section: list[dict[str, str]] = []
    for pages in _pages:
        section += [{pages.title: pages.notebook_uri}, {pages.changes_title: pages.changes_uri}]
    nav = config.nav
    if nav is not None:
        for index, item in enumerate(nav):
            if isinstance(item, dict) and PARTS_SECTION in item:
                nav[index] = {PARTS_SECTION: section}
                break
        else:
            nav.append({PARTS_SECTION: section})
    return config


@event_priority(-50)  # after mkdocs-jupyter's on_files: see NotebookPage
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every part's notebook and generated changes page to the site."""
    for pages in _pages:
        for uri in (pages.notebook_uri, pages.changes_uri):
            if files.get_file_from_path(uri) is not None:
                raise PluginError(
                    f"docs/{uri} would hide the page generated for part {pages.part.number}"
                )
        files.append(
            NotebookPage.generated(
                config, pages.notebook_uri, abs_src_path=str(pages.part.notebook)
            )
        )
        files.append(File.generated(config, pages.changes_uri, content=changes_markdown(pages)))
        # A static copy to download (.ipynb is no page extension, so MkDocs just copies it).
        files.append(
            File.generated(config, pages.download_uri, abs_src_path=str(pages.part.notebook))
        )
    # The notebooks' diagrams, at the same place relative to the part pages' sources
    # (parts/) as relative to the notebooks: notebook links to them resolve unchanged.
    diagrams = NOTEBOOKS_DIR / DIAGRAMS
    if diagrams.is_dir():
        for path in sorted(p for p in diagrams.rglob("*") if p.is_file()):
            uri = f"parts/{DIAGRAMS}/{path.relative_to(diagrams).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_nav(nav: Navigation, config: MkDocsConfig, files: Files) -> Navigation:
    """Reading order: the footer leads from part N to part N+1, not to part N's changes.

    A changes page leads back to its notebook and on to the next part.
    """
    by_uri = {page.file.src_uri: page for page in nav.pages}
    notebooks = [by_uri.get(pages.notebook_uri) for pages in _pages]
    changes = [by_uri.get(pages.changes_uri) for pages in _pages]
    for index, (notebook, change) in enumerate(zip(notebooks, changes, strict=True)):
        following = notebooks[index + 1] if index + 1 < len(notebooks) else None
        if notebook is not None:
            if index > 0:
                notebook.previous_page = notebooks[index - 1]
            notebook.next_page = following
        if change is not None:
            change.previous_page = notebook
            change.next_page = following
    return nav


def _pages_for(page: Page) -> PartPages | None:
    uri = page.file.src_uri
    return next((p for p in _pages if uri in (p.notebook_uri, p.changes_uri)), None)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if PARTS_MARKER in markdown:
        markdown = markdown.replace(PARTS_MARKER, _relative_links(written_parts_markdown(), page))
    return markdown


def _relative_links(markdown: str, page: Page) -> str:
    """Make the ``parts/…`` links of generated Markdown relative to ``page``."""
    depth = page.file.src_uri.count("/")
    return markdown.replace("](parts/", "](" + "../" * depth + "parts/")


def _notebook_link(value: str, page: Page, files: Files) -> str | None:
    """The site URL of a notebook's relative link, or None if the site has no such file.

    Notebook links are relative to notebooks/, which is parts/ on the site: a sibling
    ``part-03-x.ipynb#Heading`` becomes the part's page (JupyterLab's ``#The-heading``
    anchor turned into the page's ``#the-heading`` id), ``diagrams/x.svg`` the copied image,
    ``../docs/databases.md`` the Databases page.
    """
    target = urlsplit(urljoin(page.file.src_uri, value))
    file = files.get_file_from_path(target.path)
    if file is None and target.path.startswith("docs/"):
        # ../docs/databases.md from a notebook: the docs are the site's root.
        file = files.get_file_from_path(target.path.removeprefix("docs/"))
    if file is None:
        return None
    fragment = target.fragment
    if fragment and file.src_uri.endswith(".ipynb"):
        fragment = slugify(fragment.replace("-", " "))
    return get_relative_url(file.url, page.url) + (f"#{fragment}" if fragment else "")


def _notebook_cells(pages: PartPages) -> dict[str, dict[str, Any]]:
    notebook = json.loads(pages.part.notebook.read_text(encoding="utf-8"))
    return {str(cell.get("id")): cell for cell in notebook["cells"]}


def on_page_content(html_content: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Fix up a notebook page's HTML, and put the links bar on top of every part page."""
    pages = _pages_for(page)
    if pages is None:
        return html_content
    if page.file.src_uri == pages.notebook_uri:
        result = process_notebook(
            html_content, _notebook_cells(pages), lambda value: _notebook_link(value, page, files)
        )
        for value in result.unresolved:  # a warning fails `mkdocs build --strict`
            log.warning("%s links to %r, which is not on the site", pages.part.notebook.name, value)
        _notebook_styles.extend(s for s in result.styles if s not in _notebook_styles)
        html_content = result.content
        # mkdocs-jupyter's TOC comes from a Markdown export without inline code: a heading
        # "… with `Protocol`" loses the word and its anchor; the rendered headings have both.
        page.toc = get_toc(cast(Any, result.toc_tokens))
        page.meta["sw_notebook_css"] = NOTEBOOK_CSS  # linked in <head> by workbook/theme
        if config.repo_url and config.edit_uri:
            # Edit the notebook, not a docs/ file that does not exist.
            docs_edit = urljoin(config.repo_url.rstrip("/") + "/", config.edit_uri)
            page.edit_url = urljoin(
                docs_edit, f"../{NOTEBOOKS_DIR.name}/{pages.part.notebook.name}"
            )
    else:
        html_content = process_changes(html_content)
    return part_bar(pages, page.file.src_uri, files) + html_content


def on_post_build(config: MkDocsConfig) -> None:
    """Write the notebook CSS once; every notebook page links it."""
    if _notebook_styles:
        target = Path(config.site_dir) / NOTEBOOK_CSS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(_notebook_styles), encoding="utf-8")


def on_serve(server: LiveReloadServer, config: MkDocsConfig, builder: object) -> LiveReloadServer:
    """Rebuild when a notebook or a checkpoint changes, not only docs/."""
    for path in (NOTEBOOKS_DIR, CHECKPOINTS_DIR, *(REPO_ROOT / top for top in APP_PATHS)):
        if path.exists():
            server.watch(str(path))
    return server
