"""Post-processing of the HTML that mkdocs-jupyter renders for a notebook (used by site.py).

mkdocs-jupyter renders a notebook the way JupyterLab's HTML export does, which on a
documentation site means: ~600 KB of CSS inlined into every page, every code cell twice
(once highlighted, once hidden for its own copy button), ``¶`` anchors the search index
takes for part of the title, links to sibling ``.ipynb`` files that do not exist on the
site, and a table of contents built from a Markdown export that drops inline code from
headings. The functions here fix that on the rendered HTML, so the notebooks themselves
keep working unchanged in JupyterLab.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bs4 import BeautifulSoup, Tag
from PIL import Image

PLOT_ALT = "Plot: output of the cell"
# What nbconvert writes when an output has no description: not a description either.
NBCONVERT_ALT = "No description has been provided for this image"
# Pygments wraps every token in a span; on a code-heavy page that markup outweighs the code
# several times. Names and whitespace have no style of their own in the notebook CSS, and
# punctuation and operators take the text colour (as in Material's own code blocks): their
# spans go, which halves a code-heavy page. Keywords, strings, numbers, comments… keep theirs.
_PLAIN_SPANS = re.compile(r'<span class="[nwpo]">([^<]*)</span>|<span></span>')
_TAG = re.compile(r"(<[^>]*>)")
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)")
_HEADING = re.compile(r"^h[1-6]$")
_EMPTY_SPAN = re.compile(r'<span(?: class="[^"]*")?></span>')


@dataclass
class NotebookHtml:
    content: str
    toc_tokens: list[dict[str, Any]]
    styles: list[str] = field(default_factory=list)  # the inline CSS, to be served once
    unresolved: list[str] = field(default_factory=list)  # relative links that lead nowhere


def _tag_name(tag: str) -> str:
    match = _TAG_NAME.match(tag)
    return match[1] if match else "span"


def line_spans(inner: str) -> str:
    """Wrap every line of a ``<pre>``'s inner HTML in ``<span class="sw-line">``.

    Each line becomes a block of its own, so CSS can wrap long lines with a hanging indent:
    a wrapped diff line never continues in the ``+``/``-`` column. Tags open across a line
    break (ANSI colours, Pygments tokens) are closed and reopened around it.
    """
    out = ['<span class="sw-line">']
    stack: list[str] = []
    for token in _TAG.split(inner):
        if token.startswith("<"):
            if token.startswith("</"):
                if stack:
                    stack.pop()
            elif not token.endswith("/>"):
                stack.append(token)
            out.append(token)
            continue
        for index, text in enumerate(token.split("\n")):
            if index:
                closing = "".join(f"</{_tag_name(t)}>" for t in reversed(stack))
                out.append(f'\n{closing}</span><span class="sw-line">{"".join(stack)}')
            out.append(text)
    out.append("</span>")
    # A token ending in a newline (a whole "+" line of a diff) would leave an empty copy of
    # itself on the next line; the text's final newline, one empty line more.
    return _EMPTY_SPAN.sub("", "".join(out))


def _set_lines(element: Tag) -> None:
    spans = BeautifulSoup(line_spans(element.decode_contents()), "html.parser")
    element.clear()
    element.append(spans)
    classes = [str(c) for c in element.get_attribute_list("class") if c]
    element["class"] = " ".join([*classes, "sw-lines"])


def _exclude_from_search(soup: BeautifulSoup, element: Tag) -> None:
    # Material's search parser tracks excluded elements by tag name only, so the excluded
    # element must not contain another element of its own tag: a <section> never does here.
    element.wrap(
        soup.new_tag("section", attrs={"class": "sw-no-search", "data-search-exclude": ""})
    )


def _toc_tokens(soup: BeautifulSoup) -> list[dict[str, Any]]:
    """Nested TOC tokens (as Python-Markdown's toc extension makes them) from the headings."""
    root: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    for heading in soup.find_all(_HEADING):
        if not isinstance(heading, Tag) or not heading.get("id"):
            continue
        text = "".join(
            str(s)
            for s in heading.find_all(string=True)
            if not s.find_parent("a", class_="headerlink")
        )
        level = int(heading.name[1])
        token: dict[str, Any] = {
            "level": level,
            "id": str(heading["id"]),
            "name": html.escape(" ".join(text.split()), quote=False),
            "children": [],
        }
        while stack and stack[-1]["level"] >= level:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return root


def _first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip()), "Code")


def _collapsed_source(source: str) -> str | None:
    """What a collapsed cell that writes a file as a diff shows instead of the whole file."""
    first = _first_line(source)
    if not (first.startswith("%%code ") and "--diff" in first.split()):
        return None
    return f"{first}\n# The whole file is in this part's end checkpoint; its diff is below."


def process_notebook(
    content: str,
    cells: Mapping[str, Mapping[str, Any]],
    resolve: Callable[[str], str | None],
) -> NotebookHtml:
    """Make a notebook page light, searchable and linked.

    ``cells`` maps a cell id to the notebook's cell (for its metadata and source);
    ``resolve`` turns a relative link of the notebook into the site URL it should be, or
    returns None if the site has no such file.
    """
    soup = BeautifulSoup(_PLAIN_SPANS.sub(r"\1", content), "html.parser")
    result = NotebookHtml("", [])

    # The same CSS on every page: served once as stylesheets/notebook.css instead.
    for style in soup.find_all("style"):
        result.styles.append(style.get_text())
        style.decompose()
    # Scripts: the notebook copy button's (Material's copy button replaces it), and
    # MathJax/Mermaid loaders that would fetch from elsewhere; no notebook needs them.
    for element in soup.select("script, div.zeroclipboard-container, div.clipboard-copy-txt"):
        element.decompose()

    # Highlighted code as <pre><code>: Material's own copy button and code styles apply.
    for pre in soup.select("div.highlight-ipynb > pre"):
        code = soup.new_tag("code")
        for child in list(pre.contents):
            code.append(child.extract())
        pre.append(code)

    # Material's permalink class: styled like every other page, and skipped by search.
    for anchor in soup.select("a.anchor-link"):
        anchor["class"] = "headerlink"
        anchor["title"] = "Permanent link"

    for tag, attr in (("a", "href"), ("img", "src")):
        for element in soup.find_all(tag, attrs={attr: True}):
            value = str(element[attr])
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or value.startswith(("#", "/")) or not parts.path:
                continue
            resolved = resolve(value)
            if resolved is None:
                result.unresolved.append(value)
            else:
                element[attr] = resolved

    for cell in soup.select("div.jp-Cell[id]"):
        cell_id = str(cell["id"]).removeprefix("cell-id=")
        # nbconvert's id "cell-id=…" is no valid CSS selector, and Material's copy button
        # finds its code by a selector built from the nearest id.
        cell["id"] = "nb-" + re.sub(r"[^A-Za-z0-9_-]", "-", cell_id)
        notebook_cell = cells.get(cell_id, {})
        if "jp-CodeCell" not in cell.get_attribute_list("class"):
            continue
        metadata = notebook_cell.get("metadata", {})
        for img in cell.select(".jp-OutputArea img"):
            alt = str(img.get("alt") or "")
            img["alt"] = metadata.get("alt") or (alt if alt and alt != NBCONVERT_ALT else PLOT_ALT)
            img["src"] = lighter_png(str(img.get("src") or ""))
        for pre in cell.select(".jp-RenderedText pre"):
            _set_lines(pre)
        if metadata.get("jupyter", {}).get("source_hidden"):
            # Collapsed in JupyterLab: collapsed here too, the outputs stay visible.
            wrapper = cell.find("div", class_="jp-Cell-inputWrapper", recursive=False)
            if isinstance(wrapper, Tag):
                details = soup.new_tag("details", attrs={"class": "sw-hidden-input"})
                summary = soup.new_tag("summary")
                summary.string = _first_line("".join(notebook_cell.get("source", "")))
                wrapper.wrap(details)
                details.insert(0, summary)
                source = "".join(notebook_cell.get("source", ""))
                # Read on request only: plain text, not a span per token, keeps the page light.
                # A collapsed "%%code PATH --diff" shows its diff as output; the whole new
                # file would only repeat it (and it is in the part's end checkpoint).
                for code in wrapper.select("pre code, div.highlight pre"):
                    code.string = _collapsed_source(source) or code.get_text()
        # Search finds prose and headings; code and outputs would bury them.
        _exclude_from_search(soup, cell)

    # Markdown cells: their content straight in the notebook, no wrapper per cell. Material's
    # search ends a section where its heading's parent element ends: inside a cell wrapper,
    # the prose of the next cells would go to the page's first section, not the heading's.
    for cell in soup.select("div.jp-MarkdownCell"):
        rendered = cell.select_one(".jp-RenderedMarkdown")
        if rendered is not None:
            cell.replace_with(*rendered.contents)

    result.toc_tokens = _toc_tokens(soup)
    result.content = str(soup)
    return result


_PNG_DATA_URL = "data:image/png;base64,"


def lighter_png(src: str) -> str:
    """An inline PNG plot in at most 256 colours, when that is lighter (it usually is, by about
    two thirds: a plot's lines and text need few colours). The notebook keeps the original."""
    if not src.startswith(_PNG_DATA_URL):
        return src
    original = base64.b64decode(src.removeprefix(_PNG_DATA_URL))
    with Image.open(io.BytesIO(original)) as image:
        palette = image.convert("RGBA").quantize(256, method=Image.Quantize.FASTOCTREE)
        buffer = io.BytesIO()
        palette.save(buffer, format="PNG", optimize=True)
    lighter = buffer.getvalue()
    if len(lighter) >= len(original):
        return src
    return _PNG_DATA_URL + base64.b64encode(lighter).decode("ascii")


def process_changes(content: str) -> str:
    """Diffs on a changes page: wrapped lines with a hanging indent, not in the search index."""
    soup = BeautifulSoup(content, "html.parser")
    for block in soup.select("div.language-diff"):
        code = block.select_one("pre > code")
        if code is not None:
            _set_lines(code)
        _exclude_from_search(soup, block)
    return str(soup)
