"""The book's seed-coverage matrix (book/coverage.md) and FAQ (book/faq.md).

Fast checks without TensorFlow, a network or a book build: every section of the seed article
has a row, the seed's three questions and the readers' questions have answers, every link
into a notebook names an existing notebook *and* a heading whose anchor (MyST's slug, as
`myst_heading_anchors: 3` computes it) exists, links to other pages and to GitHub files
resolve, the article's three code bugs are named with links to where they are fixed and
tested, and no measured number is typed into the prose.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGES = ["coverage.md", "faq.md"]
GITHUB = "https://github.com/dl4h-course/deep-learning-for-healthcare/blob/main/"

# Section numbers and (short) headings of the seed article, /work/shared/seed/*.txt.
SEED_SECTIONS = {
    "1": "背景介绍",
    "2.1": "深度学习与机器学习",
    "2.2": "医疗保健领域的挑战",
    "2.3": "深度学习在医疗保健领域的应用",
    "3.1": "神经网络基础",
    "3.1.1": "激活函数",
    "3.1.2": "损失函数",
    "3.1.3": "反向传播",
    "3.2": "深度学习算法",
    "4": "具体代码实例和详细解释说明",
    "4.1": "数据预处理",
    "4.2": "构建模型",
    "4.3": "训练模型",
    "5": "未来发展趋势与挑战",
    "6": "附录常见问题与解答",
}


_MD = MarkdownIt("commonmark").enable("table")
_SLUG_CLEAN = re.compile(r"[^\w\u4e00-\u9fff\- ]")  # myst_parser's default_slugify
_NOTEBOOK_LINK = re.compile(r"^notebooks/(?P<name>[^/#]+)\.ipynb(?:#(?P<anchor>.*))?$")


# --------------------------------------------------------------------------- helpers of the test
def slugify(title: str) -> str:
    """MyST's heading anchor: lower case, spaces to hyphens, drop all but word chars and '-'."""
    return _SLUG_CLEAN.sub("", title.lower().replace(" ", "-"))


def heading_slugs(sources: list[str], max_level: int = 3) -> list[str]:
    """Anchors of the headings (levels 1..max_level) of one document made of markdown sources.

    Mirrors myst_parser's compute_unique_slug: the title is the text and inline code of the
    heading, and a repeated slug gets -1, -2, ... appended.
    """
    slugs: list[str] = []
    for source in sources:
        tokens = _MD.parse(source)
        for token, inline in zip(tokens, tokens[1:], strict=False):
            if token.type == "heading_open" and int(token.tag[1]) <= max_level:
                title = "".join(
                    child.content
                    for child in inline.children or []
                    if child.type in ("text", "code_inline")
                )
                slug, k = slugify(title), 1
                while slug in slugs:
                    slug, k = f"{slugify(title)}-{k}", k + 1
                slugs.append(slug)
    return slugs


@cache
def notebook_anchors(name: str) -> tuple[str, ...] | None:
    """Heading anchors of notebooks/<name>.ipynb (None when the notebook does not exist)."""
    path = ROOT / "notebooks" / f"{name}.ipynb"
    if path.is_file():
        nb = nbformat.read(path, as_version=4)
        return tuple(heading_slugs([c.source for c in nb.cells if c.cell_type == "markdown"]))
    return None


@cache
def page_text(page: str) -> str:
    return (BOOK / page).read_text(encoding="utf-8")


def links(text: str) -> list[str]:
    """Targets of every markdown link in a page (code spans and fences are not links)."""
    found = []
    for token in _MD.parse(text):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
    return found


def section(text: str, heading: str) -> str:
    """The markdown from a heading line (any level) up to the next heading of the same or a
    higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, flags=re.M)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def matrix_rows(text: str) -> list[list[str]]:
    """Cells of the rows of the first table of the coverage page (header row excluded)."""
    body = section(text, "Section by section")
    rows = [line for line in body.splitlines() if line.startswith("|")]
    assert len(rows) > 2, "the coverage page has no table under 'Section by section'"
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows[2:]]


def typed_decimals(text: str) -> list[str]:
    """Numbers with a decimal point (and percentages) typed into a page's prose.

    Ignored: code spans and fenced code (put code, versions and parameter values there),
    link targets, licence versions ("CC BY 4.0", "CC BY-NC 4.0"), and seed section numbers
    where they name a section: in bold at the start of a table cell (`**3.1.1** 激活函数`) or
    after "seed section(s)". Anything else, e.g. "AUC 0.93" or "Python 3.11", is returned.
    """
    found = []
    for token in _MD.parse(text):
        if token.type != "inline":
            continue
        parts = []
        for child in token.children or []:
            if child.type == "text":
                parts.append(child.content)
            elif child.type == "code_inline":
                parts.append(" <code> ")
            elif child.type in ("strong_open", "strong_close"):
                parts.append("**")
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
        prose = "".join(parts)

        def named_section(match: re.Match) -> str:
            return "" if match.group("n") in SEED_SECTIONS else match.group(0)

        prose = re.sub(r"^\*\*(?P<n>\d+(?:\.\d+)*)\*\*", named_section, prose)
        prose = re.sub(r"\bseed sections? (?P<n>\d+(?:\.\d+)*)", named_section, prose)
        prose = re.sub(r"\bCC BY(?:-NC)?(?:-SA)? \d\.\d\b", "", prose)
        found += re.findall(r"\d+(?:\.\d+)+|\.\d+|\d+\s?%", prose)
    return found


# --------------------------------------------------------------------------- the slug rule
def test_slugify_matches_myst_parser():
    base = pytest.importorskip("myst_parser.mdit_to_docutils.base")
    titles = [
        "1 · The anatomy of a DICOM file",
        "2. The article's CNN, corrected",
        "`MONOCHROME1` and the VOI LUT",
        "Where does the network look? Grad-CAM",
        "Glossary / 术语表",
        "A bidirectional LSTM and a Conv1D + BiLSTM hybrid",
    ]
    for title in titles:
        assert slugify(title) == base.default_slugify(title)
    # the case checked with a real build: the middle dot goes, its two spaces stay
    assert slugify("1 · The anatomy of a DICOM file") == "1--the-anatomy-of-a-dicom-file"


def test_heading_slugs_take_inline_code_and_number_repeats():
    cells = [
        "# 03 · Title\n\n## `MONOCHROME1` and the VOI LUT",
        "## Summary\n### Summary\n#### Deep",
    ]
    assert heading_slugs(cells) == [
        "03--title",
        "monochrome1-and-the-voi-lut",
        "summary",
        "summary-1",
    ]


def test_typed_decimals_guard_and_its_exceptions():
    assert typed_decimals("The AUC was 0.93 and sensitivity 95%.") == ["0.93", "95%"]
    assert typed_decimals("Tested with Python 3.11, threshold .5.") == ["3.11", ".5"]
    assert typed_decimals("seed section 7.5 does not exist") == ["7.5"]
    assert typed_decimals("Tested with `Python 3.11` and `Adam(lr=0.001)`.") == []
    assert typed_decimals("| **3.1.1** 激活函数 | text |\n|---|---|\n| **4.3**: the x | y |") == []
    assert typed_decimals("seed sections 2.1 and seed section 3.2; CC BY 4.0, CC BY-NC 4.0") == []
    assert typed_decimals("[03 §4](notebooks/x.ipynb#4-a-0.5-b)") == []


# --------------------------------------------------------------------------- the coverage matrix
def test_pages_have_their_titles():
    assert page_text("coverage.md").startswith(
        "# Seed coverage: where the course covers each part of the article\n"
    )
    assert page_text("faq.md").startswith("# Frequently asked questions\n")


def test_matrix_has_a_row_for_every_seed_section_with_its_heading():
    rows = matrix_rows(page_text("coverage.md"))
    assert all(len(row) == 4 for row in rows), [row[0] for row in rows if len(row) != 4]
    numbers = {}
    for row in rows:
        match = re.match(r"\*\*(\d+(?:\.\d+)*)\*\*", row[0])
        assert match, f"row without a bold seed section number: {row[0]!r}"
        numbers.setdefault(match.group(1), []).append(row)
    assert set(numbers) == set(SEED_SECTIONS)
    for number, heading in SEED_SECTIONS.items():
        assert heading in numbers[number][0][0], f"section {number}: heading {heading} missing"
        assert re.search(r"\([a-z][^)]*\)", numbers[number][0][0]), f"{number}: no English gloss"
    for row in rows:
        assert row[1] and row[3], f"{row[0]}: empty 'says' or 'adds' cell"
        where = links(row[2])
        assert where, f"{row[0]}: no link to where the course covers it"
        for target in where:
            # a chapter link names the section too, not only the notebook
            assert not target.startswith("notebooks/") or "#" in target, (row[0], target)


def test_matrix_splits_the_applications_and_maps_doctors_and_costs():
    rows = matrix_rows(page_text("coverage.md"))
    first = " ".join(row[0] for row in rows if row[0].startswith("**2.3**"))
    for family in ("image", "sequence", "prediction", "personalised treatment"):
        assert family in first, family
    costs = [row for row in rows if row[0].startswith("**2.2**") and "doctors" in row[0]]
    assert costs and "costs" in costs[0][0]
    assert (
        "notebooks/09_trustworthy_clinical_ai.ipynb#1-uncertainty-knowing-when-to-refer"
        in links(costs[0][2])
    )


# the article's three code bugs: heading on the coverage page, where shown, where fixed, tests
BUGS = {
    "The grey-scale step": {
        "links": [
            "notebooks/03_medical_image_preprocessing.ipynb#4--the-articles-preprocessing-run-as-written",
            "notebooks/03_medical_image_preprocessing.ipynb#the-corrected-function",
        ],
        "tests": {
            "test_dicom.py": [
                "test_seed_preprocess_fails_on_real_images",
                "test_preprocess_gives_what_the_model_expects",
            ]
        },
    },
    "Three channels in, one channel out": {
        "links": [
            "notebooks/03_medical_image_preprocessing.ipynb#4--the-articles-preprocessing-run-as-written",
            "notebooks/04_cnn_chest_xray.ipynb#3-the-articles-cnn-corrected",
        ],
        "tests": {
            "test_models.py": ["test_seed_cnn_matches_the_article_architecture_on_28px"],
            "test_dicom.py": ["test_preprocess_gives_what_the_model_expects"],
        },
    },
    "The removed `lr=` argument": {
        "links": [
            "notebooks/03_medical_image_preprocessing.ipynb#4--the-articles-preprocessing-run-as-written",
            "notebooks/04_cnn_chest_xray.ipynb#3-the-articles-cnn-corrected",
        ],
        "tests": {"test_dicom.py": ["test_keras3_adam_rejects_lr"]},
    },
}


@pytest.mark.parametrize("bug", list(BUGS))
def test_code_bugs_are_named_with_links_to_the_fix_and_the_test(bug):
    body = section(page_text("coverage.md"), bug)
    targets = links(body)
    for target in BUGS[bug]["links"]:
        assert target in targets, f"{bug}: no link to {target}"
    for test_file, functions in BUGS[bug]["tests"].items():
        assert f"{GITHUB}tests/{test_file}" in targets, f"{bug}: no GitHub link to {test_file}"
        source = (ROOT / "tests" / test_file).read_text()
        for function in functions:
            assert f"`{function}`" in body, f"{bug}: test {function} not named"
            assert re.search(rf"^def {function}\(", source, flags=re.M), (
                f"{test_file} has no {function}"
            )


# --------------------------------------------------------------------------- the FAQ
FAQ = {
    # heading: a link the answer must contain (the seed's three questions first)
    "What can deep learning do in healthcare?": "notebooks/07_rnn_sequences.ipynb#2-splice-junctions",
    "What stands in the way of deep learning in healthcare?": "notebooks/01_deep_learning_vs_machine_learning.ipynb#31-missing-values",
    "Where is deep learning in healthcare heading?": "notebooks/09_trustworthy_clinical_ai.ipynb#6-future-directions-and-what-stands-in-the-way",
    "Do I need a GPU?": "notebooks/00_start_here.ipynb#profiles-one-notebook-three-sizes-of-run",
    "Why are the images only 28 pixels wide?": "notebooks/04_cnn_chest_xray.ipynb#7-against-the-published-baselines",
    "Is the chest X-ray model ready for clinical use?": "notebooks/04_cnn_chest_xray.ipynb#6-the-test-set-used-once",
    "Why not judge a model by its accuracy alone?": "notebooks/04_cnn_chest_xray.ipynb#5-choosing-the-operating-point-on-validation",
    "Where does the data come from, and may I redistribute it?": f"{GITHUB}data/README.md",
    "How do I run the course without internet?": "notebooks/00_start_here.ipynb#where-the-data-lives",
    "How do I run it on Google Colab?": "notebooks/00_start_here.ipynb#how-to-run-it",
    "How do I fork the course for my class, and how do I cite it?": "references.md",
    "Why does my number differ from the one in the book?": "results.md",
    "How were the article's code bugs fixed?": "coverage.md#the-articles-code-bugs",
    "Why is voxel accuracy meaningless for segmentation?": "notebooks/05_volumes_and_segmentation.ipynb#why-voxel-accuracy-is-meaningless-here",
    "Why does chapter 05 train a 2D U-Net on a CPU?": "notebooks/05_volumes_and_segmentation.ipynb#3-segmentation-the-hippocampus-on-mri",
    "Does a recurrent network beat trees on the ICU stays?": "notebooks/08_disease_course_prediction.ipynb#3-in-hospital-mortality-from-the-first-48-hours",
    "Why feed a model the mask and the time gaps, not only imputed values?": "notebooks/08_disease_course_prediction.ipynb#2-missingness-measured",
}


@pytest.mark.parametrize("question", list(FAQ))
def test_faq_answers_each_question_with_a_link_into_the_course(question):
    body = section(page_text("faq.md"), question)
    assert re.search(rf"^## {re.escape(question)}$", page_text("faq.md"), flags=re.M)
    assert FAQ[question] in links(body), f"{question}: no link to {FAQ[question]}"
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if not p.lstrip().startswith("-")]
    assert 1 <= len(paragraphs) <= 3, f"{question}: {len(paragraphs)} paragraphs"


def test_faq_redistribution_answer_names_the_licences():
    body = section(page_text("faq.md"), "Where does the data come from, and may I redistribute it?")
    for licence in ("CC BY 4.0", "CC BY-NC 4.0", "UCR", "pydicom", "MIT"):
        assert licence in body, licence


# --------------------------------------------------------------------------- every link resolves
@pytest.mark.parametrize("page", PAGES)
def test_notebook_links_point_at_existing_notebooks_and_headings(page):
    checked = 0
    for target in links(page_text(page)):
        match = _NOTEBOOK_LINK.match(target)
        if target.startswith("notebooks/"):
            assert match, f"{page}: malformed notebook link {target!r}"
        if not match:
            continue
        anchors = notebook_anchors(match.group("name"))
        assert anchors is not None, f"{page}: no notebook notebooks/{match.group('name')}.ipynb"
        if match.group("anchor") is not None:
            assert match.group("anchor") in anchors, (
                f"{page}: {target!r}: no heading with that anchor; anchors are {anchors}"
            )
        checked += 1
    assert checked >= 20, f"{page}: only {checked} links into the notebooks"


@pytest.mark.parametrize("page", PAGES)
def test_links_to_book_pages_and_in_page_anchors_resolve(page):
    for target in links(page_text(page)):
        if re.match(r"^[a-z]+:", target) or target.startswith("notebooks/"):
            continue
        path, _, anchor = target.partition("#")
        path = path or page
        assert (BOOK / path).is_file(), f"{page}: link to a missing page {target!r}"
        if anchor:
            assert anchor in heading_slugs([page_text(path)]), f"{page}: no anchor {target!r}"


@pytest.mark.parametrize("page", PAGES)
def test_github_links_point_at_files_of_this_repository(page):
    for target in links(page_text(page)):
        if target.startswith("https://github.com/"):
            assert target.startswith(GITHUB), f"{page}: link outside the repository {target!r}"
            path, _, anchor = target.removeprefix(GITHUB).partition("#")
            assert (ROOT / path).is_file(), f"{page}: {target!r}"
            if anchor:  # GitHub's heading anchors follow the same rule for plain headings
                assert anchor in heading_slugs([(ROOT / path).read_text()], max_level=6), target


# --------------------------------------------------------------------------- numbers come from outputs
@pytest.mark.parametrize("page", PAGES)
def test_no_measured_numbers_typed_into_the_page(page):
    assert typed_decimals(page_text(page)) == [], (
        f"{page}: numbers typed into the prose; link to the chapter or results.md instead"
    )
