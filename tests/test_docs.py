"""The manual: README.md and docs/*.md link only to files and headings that exist."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
# a fence opens a line; a backtick fence's info string holds no backtick (CommonMark), so a line that starts
# with an inline ``` span of its own is prose
FENCE = re.compile(r"^(?:`{3,}(?!.*`)|~{3,})")


def prose_lines(path: Path):
    """The lines of a page outside fenced code blocks."""
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path):
        match = re.match(r"^#{1,6} (.*)", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path):
    for line in prose_lines(path):
        # inline code is not a link
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"^[a-z]+:", target):
                yield target


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves_to_a_file_and_heading(page):
    assert broken_links(page) == []


def test_the_readme_fits_on_about_one_screen_and_links_every_docs_page():
    readme = REPO / "README.md"
    assert len(readme.read_text().splitlines()) <= 150
    linked = {Path(t.partition("#")[0]).name for t in links(readme) if t.startswith("docs/")}
    assert linked == {p.name for p in PAGES[1:]}, "every docs page is reachable from the README's table"


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "b.md").write_text("# Real heading\n\n## `Code` and more: here\n")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md#real-heading) [ok2](b.md#code-and-more-here) [web](https://example.org/x)\n"
        "[gone](c.md) [nohead](b.md#not-there)\n"
        "```\n[in code](nowhere.md)\n```\n"
    )
    assert broken_links(page) == ["c.md: no such file", "b.md#not-there: no heading #not-there in b.md"]
