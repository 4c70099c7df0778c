"""The documentation: README.md is a front door of at most 260 lines, and every relative link in
README.md, docs/*.md and bench/*.md points to a file that exists (and, for a link to a Markdown
heading, to a heading that exists). Plain text parsing: no MindSpore, well under a second."""
import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README_MAX_LINES = 260
PAGES = sorted(["README.md"] + [os.path.relpath(path, REPO) for pattern in ("docs/*.md", "bench/*.md")
                                for path in glob.glob(os.path.join(REPO, pattern))])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def text_of(page):
    with open(os.path.join(REPO, page), encoding="utf-8") as handle:
        return handle.read()


def prose(text):
    """The text without code blocks and inline code, where brackets are not links."""
    return CODE.sub("", FENCE.sub("", text))


def anchors(text):
    """GitHub's anchors for the headings of a Markdown text: lower case, punctuation other than
    '-' and '_' dropped, spaces to '-', a repeated anchor numbered -1, -2, ..."""
    seen, result = {}, set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def relative_links(page):
    for target in LINK.findall(prose(text_of(page))):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: are not checked
            yield target


def test_the_readme_is_a_front_door():
    lines = text_of("README.md").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ (at most {README_MAX_LINES})"


def test_every_docs_page_is_in_the_index():
    index = text_of(os.path.join("docs", "README.md"))
    for path in glob.glob(os.path.join(REPO, "docs", "*.md")):
        name = os.path.basename(path)
        assert name == "README.md" or f"]({name})" in index, f"docs/README.md does not link to {name}"


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_in_the_docs_points_to_something_that_exists(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(REPO, os.path.dirname(page), path)) if path else \
            os.path.join(REPO, page)
        if not os.path.exists(resolved):
            broken.append(f"{target}: no such file")
        elif anchor and resolved.endswith(".md") and anchor not in anchors(text_of(resolved)):
            broken.append(f"{target}: no heading with the anchor #{anchor}")
    assert not broken, f"{page}: " + "; ".join(broken)


def test_the_readme_headline_figures_are_the_bench_files_figures():
    """A figure in the README's Results section is copied from the bench file its bullet links
    to: every number of the bullet must appear in that file, so a rerun bench that changes it
    makes this fail until the README quotes the new figure."""
    section = text_of("README.md").split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    bullets = [bullet for bullet in re.split(r"\n(?=- )", section) if bullet.startswith("- ")]
    assert bullets, "README.md's Results section has no bullets"
    for bullet in bullets:
        targets = [target for target in LINK.findall(bullet) if target.startswith("bench/")]
        assert targets, f"a Results bullet links to no bench file: {bullet[:60]}..."
        figures = re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?", LINK.sub("", bullet).replace("**", ""))
        bench = "\n".join(text_of(target.split("#")[0]) for target in targets)
        for figure in figures:
            assert re.search(rf"(?<![\d.]){re.escape(figure.lstrip('-'))}(?![\d])", bench), \
                f"README quotes {figure}, which {', '.join(targets)} do not hold: {bullet[:60]}..."
