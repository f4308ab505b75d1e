import os
import shutil
import subprocess

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def _bwrap_works() -> bool:
    exe = shutil.which("bwrap")
    if not exe:
        return False
    return subprocess.run([exe, "--unshare-all", "--ro-bind", "/", "/", "true"],
                          capture_output=True).returncode == 0


BWRAP = _bwrap_works()


@pytest.fixture(scope="session")
def sandbox() -> str:
    """The sandbox grading tests use: bubblewrap, as in production."""
    if not BWRAP:
        pytest.skip("bubblewrap is not installed or cannot create namespaces here "
                    "(python3 course.py test installs it when run as root on Debian)")
    return "bwrap"


# ----------------------------------------------------------------------------
# Debian's Chromium driven by Playwright (the browser tests)
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    from browser_helpers import find_chromium, install_chromium

    path = find_chromium()
    if path is None:
        path, why = install_chromium()
        if path is None:
            if "needs root" in why or "no apt-get" in why:
                pytest.skip(why)
            pytest.fail(why)
    return path


@pytest.fixture(scope="module")
def browser(chromium):
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is in the test extra: pip install -e '.[test]'")
    pw = sync_api.sync_playwright().start()
    try:
        from browser_helpers import CHROMIUM_ARGS

        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    yield b
    b.close()
    pw.stop()


# ----------------------------------------------------------------------------
# Executing each source notebook once per test session
# ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """``executed(path) -> {"nb", "seconds", "error"}``: the source notebook at ``path`` run top
    to bottom once per session, in quick mode (``COURSE_QUICK=1``: shorter training runs),
    offline, with nothing cached. Tests that look at a notebook's outputs share this run."""
    import time

    import nbformat
    from nbclient import NotebookClient

    cache: dict = {}

    def run(path):
        if path not in cache:
            nb = nbformat.read(str(path), as_version=4)
            data = tmp_path_factory.mktemp("data")
            env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "COURSE_QUICK": "1",
                   "COURSE_DATA_DIR": str(data)}
            old = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            t0 = time.monotonic()
            error = None
            try:
                NotebookClient(nb, timeout=600, kernel_name="python3",
                               resources={"metadata": {"path": str(path.parent)}}).execute()
            except Exception as exc:  # reported by the tests that use the run
                error = f"{type(exc).__name__}: {exc}"
            finally:
                for k, v in old.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            cache[path] = {"nb": nb, "seconds": time.monotonic() - t0, "error": error}
        return cache[path]

    return run


def representative(ids: list[str]) -> list[str]:
    """A sample of assignments for the slowest tests (the browser): the first two, every
    fourth after them and the last; ``COURSE_TEST_ALL=1`` takes them all."""
    if os.environ.get("COURSE_TEST_ALL", "").strip() not in ("", "0") or len(ids) <= 3:
        return list(ids)
    keep = set(ids[:2]) | set(ids[2::4]) | {ids[-1]}
    return [a for a in ids if a in keep]


# ----------------------------------------------------------------------------
# Test timings for `python -m bench suite` (COURSE_TEST_TIMINGS=path.json)
# ----------------------------------------------------------------------------

_TIMINGS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    if os.environ.get("COURSE_TEST_TIMINGS"):
        _TIMINGS[report.nodeid] = _TIMINGS.get(report.nodeid, 0.0) + float(report.duration)


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("COURSE_TEST_TIMINGS")
    if path:
        import json

        with open(path, "w") as f:
            json.dump(_TIMINGS, f, indent=1, sort_keys=True)
