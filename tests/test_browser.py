"""The student's experience, end to end, in JupyterLab in a real browser (Chromium + Playwright).

A JupyterLab server (token auth, its own settings and workspaces in a temporary folder)
serves a copy of the released notebooks with a student's answers filled in. For every
assignment notebook the browser runs *Run → Restart Kernel and Run All Cells…* and the
tests check that every cell ran without an error, that the plots rendered on an opaque
white background (readable in the light and the dark theme), and that moving a slider
redraws its widget's figure. The landing page (notebooks/index.ipynb) and the
"check my work" cell are tested the same way.

Screenshots (one of every whole notebook, one in the dark theme, the index and the
check table) go to test-output/screenshots/ (or $COURSE_TEST_OUTPUT/screenshots/).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from browser_helpers import LabPage, LabServer
from conftest import representative

from course_utils.progress import collect
from grader.fixtures import make_submission
from grader.index import build_index
from grader.notebook import nbgrader_meta, source_notebooks
from grader.paths import ROOT, assignments, release_dir

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# A representative sample of assignments (conftest.representative; COURSE_TEST_ALL=1 for all):
# the browser tests are the slowest per notebook, and what they check is the same for each.
NOTEBOOKS = [(aid, src.name) for aid in representative(assignments()) for src in source_notebooks(aid)
             if (release_dir() / aid / f"{src.name}.ipynb").exists()]
IDS = [f"{aid}/{name}" for aid, name in NOTEBOOKS]
OUT = Path(os.environ.get("COURSE_TEST_OUTPUT", ROOT / "test-output")) / "screenshots"
CHECK_CELL = "from course_utils.progress import check_my_work\n\ncheck_my_work()"
WRITTEN_ANSWER = "My answer, in my own words, would go here."


def _shot_name(aid: str, name: str, suffix: str = "") -> Path:
    single = sum(a == aid for a, _ in NOTEBOOKS) == 1
    return OUT / f"{aid if single else f'{aid}-{name}'}{suffix}.png"


# ----------------------------------------------------------------------------
# Fixtures: the browser, the server, and a student's folder
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def student_folder(tmp_path_factory) -> Path:
    """The released notebooks as a student hands them in: every answer filled in, and a last
    cell that runs check_my_work() (added where the release does not have one yet)."""
    root = tmp_path_factory.mktemp("student")
    for aid in sorted({aid for aid, _ in NOTEBOOKS}):
        for path in make_submission(root / aid, aid, "reference"):
            nb = nbformat.read(str(path), as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "markdown" and nbgrader_meta(cell).get("solution"):
                    cell.source = WRITTEN_ANSWER
            if not any("check_my_work(" in c.source for c in nb.cells if c.cell_type == "code"):
                nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
            nbformat.write(nb, str(path))
    (root / "index.ipynb").write_text(build_index())
    return root


@pytest.fixture(scope="module")
def lab(student_folder, tmp_path_factory):
    home = tmp_path_factory.mktemp("jupyter-home")
    server = LabServer(student_folder, home, env={"COURSE_DATA_DIR": str(home / "data")}).start()
    yield server
    server.stop()


@dataclass
class Run:
    page: LabPage
    seconds: float
    saved: nbformat.NotebookNode
    screenshot: Path


@pytest.fixture(scope="module")
def run(lab, browser, student_folder):
    """run((aid, name)) opens that notebook, restarts and runs it all, saves it; once per notebook."""
    done: dict[tuple[str, str], Run] = {}
    contexts = []

    def get(key: tuple[str, str]) -> Run:
        if key not in done:
            aid, name = key
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            contexts.append(context)
            page = context.new_page()
            page.set_default_timeout(60_000)
            lab_page = LabPage(page, lab).open(f"{aid}/{name}.ipynb", workspace=f"{aid}-{name}")
            seconds = lab_page.restart_and_run_all()
            print(f"{aid}/{name}.ipynb ran in the browser in {seconds:.1f} s")
            lab_page.save()
            saved = nbformat.read(str(student_folder / aid / f"{name}.ipynb"), as_version=4)
            shot = lab_page.screenshot_notebook(_shot_name(aid, name))
            print(f"screenshot: {shot}")
            done[key] = Run(lab_page, seconds, saved, shot)
        return done[key]

    yield get
    for context in contexts:
        context.close()


# ----------------------------------------------------------------------------
# Every assignment notebook, run by a student
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom_without_errors(run, key):
    r = run(key)
    tracebacks = r.page.tracebacks()
    assert not tracebacks, f"{key[0]}/{key[1]}: errors on the page:\n" + "\n\n".join(tracebacks)[:4000]
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(r.saved.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, f"cells raised (cell index, error, message): {errors}"
    unexecuted = r.page.unexecuted_cells()
    assert not unexecuted, f"code cells {unexecuted} did not run (the run stopped early?)"
    assert r.screenshot.stat().st_size > 50_000, "the screenshot is suspiciously small: did the page render?"


@pytest.mark.parametrize("key", NOTEBOOKS, ids=IDS)
def test_plots_render_on_an_opaque_white_background(run, key):
    images = run(key).page.images()
    assert images, "no plot was rendered (no inline PNG in any output)"
    dark = [(im.index, f"{im.width}x{im.height}", im.corner) for im in images if not im.opaque_light]
    assert not dark, (
        "plots whose background is transparent or dark, unreadable in one of the themes "
        "(index among the page's images, size, RGBA of the corner pixel): "
        f"{dark}; call course_utils.plots.use_course_style() before plotting")


@pytest.mark.parametrize("key", NOTEBOOKS, ids=IDS)
def test_widget_control_redraws_its_figure(run, key):
    page = run(key).page
    assert page.controls().count() >= 1, "no ipywidgets slider or drop-down menu rendered"
    before, after = page.change_first_control()
    assert before != after, f"the control's value did not change ({before!r})"


@pytest.mark.parametrize("key", NOTEBOOKS, ids=IDS)
def test_dark_theme_keeps_outputs_readable(run, key):
    page = run(key).page
    try:
        page.set_theme("JupyterLab Dark")
        background = page.page.evaluate(
            "getComputedStyle(document.querySelector('.jp-Notebook')).backgroundColor")
        widget = page.page.locator(".jp-OutputArea-output:has(.widget-slider)")
        area = widget if widget.count() else page.page.locator(".jp-OutputArea-output:has(img)")
        area.first.scroll_into_view_if_needed()
        shot = _shot_name(*key, suffix="-dark")
        page.page.screenshot(path=str(shot))
        print(f"screenshot: {shot}")
        images = page.images()
        assert images and all(im.opaque_light for im in images), \
            "plots must keep their white background in the dark theme"
        text = page.page.evaluate(
            "getComputedStyle(document.querySelector('.jp-OutputArea-output pre')).color")
        assert _luminance(background) < 0.3 < _luminance(text), (background, text)
    finally:
        page.set_theme("JupyterLab Light")


def _luminance(css: str) -> float:
    r, g, b = (float(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


# ----------------------------------------------------------------------------
# The landing page and "check my work"
# ----------------------------------------------------------------------------

def test_index_page_lists_the_assignments_and_opens_them(lab, browser, student_folder):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        lab_page = LabPage(page, lab).open("index.ipynb", workspace="index")
        lab_page.restart_and_run_all(timeout=120)
        assert not lab_page.tracebacks()
        table = page.locator("table.course-index")
        table.wait_for()
        rows = table.locator("tbody tr")
        expected = collect(student_folder)
        assert rows.count() == len(expected) > 0
        for i, info in enumerate(expected):
            text = rows.nth(i).inner_text()
            assert info.title in text and info.status in text and info.time in text, text
        shot = lab_page.screenshot_notebook(OUT / "index.png")
        print(f"screenshot: {shot}")
        # a link opens the notebook in JupyterLab
        first = expected[0].notebooks[0].path.name
        table.locator("a", has_text=first).first.click()
        page.locator(f".lm-TabBar-tab.jp-mod-current:has-text('{first}')").wait_for()
    finally:
        context.close()
        lab.shutdown_kernels()


@pytest.mark.parametrize("key", NOTEBOOKS, ids=IDS)
def test_check_my_work_cell_shows_every_exercise_passed(run, key, sandbox):
    page = run(key).page.page
    table = page.locator("table.course-check")
    assert table.count() == 1, "check_my_work() showed no table: " + page.locator(
        ".jp-Cell:last-child .jp-OutputArea").last.inner_text()[:2000]
    rows = table.locator("tbody tr")
    texts = rows.all_inner_texts()
    auto = [t for t in texts if "written answer" not in t]
    assert auto and all(t.lstrip().startswith("✓") for t in auto), texts
    assert "all autograded exercises pass" in page.locator(".jp-OutputArea-output:has(table.course-check)").inner_text()
    table.scroll_into_view_if_needed()
    time.sleep(0.3)
    shot = _shot_name(*key, suffix="-check")
    page.locator(".jp-OutputArea-output:has(table.course-check)").screenshot(path=str(shot))
    print(f"screenshot: {shot}")
