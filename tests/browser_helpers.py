"""Driving JupyterLab in a real browser for the end-to-end tests (tests/test_browser.py).

``LabServer`` starts ``jupyter lab`` on 127.0.0.1 with a random token and every Jupyter
folder (config, settings, workspaces, runtime) in a temporary directory, so the tests
neither read nor change the user's set-up.  ``LabPage`` does what a student does with
the mouse and keyboard: open a notebook, *Run → Restart Kernel and Run All Cells…*, move
a slider, switch the theme, save.  The browser is Debian's ``chromium`` package, driven
by Playwright (Playwright's own browser download is not used).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]  # containers often have a tiny /dev/shm
CHROMIUM_NAMES = ("chromium", "chromium-browser")

# User settings written before JupyterLab starts: no news pop-up (it would cover the page),
# and every cell kept in the page (the default windowing leaves off-screen cells out of
# the DOM, which would hide outputs from the assertions and the screenshots).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/themes": {"theme": "JupyterLab Light"},
}


def find_chromium() -> str | None:
    explicit = os.environ.get("COURSE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium() -> tuple[str | None, str]:
    """Install Debian's chromium when we can (root with apt-get); returns (path, why not)."""
    if os.name != "posix" or not shutil.which("apt-get"):
        return None, "chromium is not installed and this system has no apt-get to install it"
    if os.geteuid() != 0:
        return None, ("chromium is not installed and installing it needs root: "
                      "`sudo apt-get install chromium` (or set COURSE_CHROMIUM to a Chromium binary)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            return None, f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-500:]}"
    return find_chromium(), "apt-get installed chromium but no chromium binary is on PATH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` serving ``root`` on 127.0.0.1, isolated in ``home``."""

    def __init__(self, root: Path, home: Path, env: dict[str, str] | None = None):
        self.root, self.home = Path(root), Path(home)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyterlab.log"
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the test suite's Agg would stop plots from showing in the notebook
        env.pop("JPY_SESSION_NAME", None)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                         ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                         ("IPYTHONDIR", "ipython")):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.home / sub)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(self.extra_env)
        return env

    def _write_settings(self) -> None:
        for plugin, values in LAB_SETTINGS.items():
            path = self.home / "settings" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 120) -> LabServer:
        env = self._env()
        self._write_settings()
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, method: str, path: str, timeout: float = 10):
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        try:
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        except OSError:
            pass

    def url(self, path: str, workspace: str) -> str:
        return f"{self.base}/lab/workspaces/{workspace}/tree/{path}?reset&token={self.token}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.shutdown_kernels()
            try:  # the server and the kernels it started share one process group
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self._log.close()
        self.proc = None


# ----------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------

_PROMPTS_JS = "[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
_STATUS_JS = "(document.querySelector('#jp-main-statusbar') || {innerText: ''}).innerText"


@dataclass
class Image:
    index: int
    width: int
    height: int
    corner: tuple[int, int, int, int]  # RGBA of the top-left pixel
    in_widget: bool

    @property
    def opaque_light(self) -> bool:
        r, g, b, a = self.corner
        return a == 255 and min(r, g, b) >= 200


def decode_png(src: str):
    from PIL import Image as PILImage

    if not src.startswith("data:image/png;base64,"):
        raise ValueError(f"not an inline PNG: {src[:40]}...")
    return PILImage.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGBA")


class LabPage:
    """A JupyterLab tab in Chromium, showing one notebook."""

    def __init__(self, page, server: LabServer):
        self.page = page
        self.server = server

    # -- opening and running ------------------------------------------------
    def open(self, path: str, workspace: str, timeout: float = 120) -> LabPage:
        self.path = path
        self.page.goto(self.server.url(path, workspace))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)
        current = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if current.count():  # fold the file browser away: a student's notebook gets the width
            current.first.click()
        return self

    def status_text(self) -> str:
        return self.page.evaluate(_STATUS_JS)

    def wait_kernel_idle(self, timeout: float = 120) -> None:
        self.page.wait_for_function(f"() => /\\|\\s*Idle/.test({_STATUS_JS})", timeout=timeout * 1000)

    def menu(self, *labels: str) -> None:
        """Click through the menu bar, e.g. menu("Run", "Run All Cells")."""
        self.page.click(f".lm-MenuBar-itemLabel:text-is('{labels[0]}')")
        for label in labels[1:-1]:
            self.page.hover(f".lm-Menu-itemLabel:text-is('{label}')")
        self.page.click(f".lm-Menu-itemLabel:text-is('{labels[-1]}')")

    def restart_and_run_all(self, timeout: float = 600) -> float:
        """Run → Restart Kernel and Run All Cells…, confirm, wait until done; returns the seconds."""
        t0 = time.monotonic()
        self.menu("Run", "Restart Kernel and Run All Cells…")
        self.page.click(".jp-Dialog .jp-mod-accept")
        try:  # the queue fills at once; a notebook this fast is not a course notebook
            self.page.wait_for_function(f"() => {_PROMPTS_JS}.some(t => t === '[*]:')", timeout=30_000)
        except Exception:
            pass
        self.page.wait_for_function(
            f"() => !{_PROMPTS_JS}.some(t => t === '[*]:') && /\\|\\s*Idle/.test({_STATUS_JS})",
            timeout=timeout * 1000, polling=500)
        time.sleep(1.0)  # outputs of the last message are rendered
        return time.monotonic() - t0

    def prompts(self) -> list[str]:
        return self.page.evaluate(_PROMPTS_JS)

    def unexecuted_cells(self) -> list[int]:
        return [i for i, p in enumerate(self.prompts()) if not p.strip("[]:").isdigit()]

    def tracebacks(self) -> list[str]:
        """Texts of the error outputs on the page (cells and widget outputs alike)."""
        texts = self.page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        return [t for t in texts if "Traceback (most recent call last)" in t
                or re.search(r"^\w*(Error|Exception|Interrupt)\b", t, re.MULTILINE)]

    def save(self) -> None:
        self.page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Control+s")
        self.page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", timeout=60_000)

    # -- outputs -------------------------------------------------------------
    def images(self) -> list[Image]:
        found = self.page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output img')].map(
            img => [img.getAttribute('src') || '', !!img.closest('.jupyter-widgets, .widget-output')])""")
        out = []
        for i, (src, in_widget) in enumerate(found):
            try:
                png = decode_png(src)
            except ValueError:
                continue
            out.append(Image(i, png.width, png.height, png.getpixel((0, 0)), bool(in_widget)))
        return out

    def sliders(self):
        return self.page.locator(".jp-OutputArea-output .widget-slider")

    def controls(self):
        """The notebook's ipywidgets sliders and drop-down menus."""
        return self.page.locator(".jp-OutputArea-output .widget-slider, .jp-OutputArea-output .widget-dropdown")

    def change_first_control(self, timeout: float = 60) -> tuple[str, str]:
        """Move the first slider (or, with none, pick the next entry of the first drop-down menu);
        wait until its figure is redrawn. Returns the control's value before and after."""
        if self.sliders().count():
            return self.move_first_slider(timeout)
        area = self.page.locator(".jp-OutputArea-output:has(.widget-dropdown)").first
        area.scroll_into_view_if_needed()
        select = area.locator(".widget-dropdown select").first
        options = select.locator("option").all_inner_texts()
        before_value = select.evaluate("e => e.options[e.selectedIndex].text")
        after = options[(options.index(before_value) + 1) % len(options)]
        before_src = area.locator("img").first.get_attribute("src")
        select.select_option(label=after)
        self.page.wait_for_function(
            "([area, src]) => { const i = area.querySelector('img'); return i && i.getAttribute('src') !== src; }",
            arg=[area.element_handle(), before_src], timeout=timeout * 1000)
        return before_value, select.evaluate("e => e.options[e.selectedIndex].text")

    def move_first_slider(self, timeout: float = 60) -> tuple[str, str]:
        """Press an arrow key on the first slider's handle; wait until its figure is redrawn.

        Returns the slider's readout before and after."""
        area = self.page.locator(".jp-OutputArea-output:has(.widget-slider)").first
        area.scroll_into_view_if_needed()
        readout = area.locator(".widget-readout").first
        before_value = readout.inner_text()
        img = area.locator("img").first
        before_src = img.get_attribute("src")
        handle = area.locator(".noUi-handle").first
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        self.page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        self.page.wait_for_function(
            "([area, src]) => { const i = area.querySelector('img'); return i && i.getAttribute('src') !== src; }",
            arg=[area.element_handle(), before_src], timeout=timeout * 1000)
        return before_value, readout.inner_text()

    # -- theme and screenshots ----------------------------------------------
    def set_theme(self, name: str) -> None:
        light = "true" if "Light" in name else "false"
        self.menu("Settings", "Theme", name)
        self.page.wait_for_function(
            f"() => document.body.dataset.jpThemeName === {json.dumps(name)} "
            f"&& document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)
        time.sleep(0.5)

    def screenshot_notebook(self, path: Path, max_height: int = 30_000) -> Path:
        """The whole notebook in one image: the window is made as tall as the notebook."""
        path.parent.mkdir(parents=True, exist_ok=True)
        scroller = self.page.locator(".jp-NotebookPanel .jp-WindowedPanel-outer").first
        scroller.evaluate("e => { e.scrollTop = 0; }")
        size = self.page.viewport_size
        height = scroller.evaluate("e => e.scrollHeight") + 250
        self.page.set_viewport_size({"width": size["width"], "height": min(height, max_height)})
        time.sleep(1.0)
        scroller.evaluate("e => { e.scrollTop = 0; }")
        bottom = self.page.evaluate(  # below the last cell there is only JupyterLab's scroll margin
            "() => Math.ceil(document.querySelector('.jp-NotebookPanel .jp-Cell:last-child')"
            ".getBoundingClientRect().bottom)")
        viewport = self.page.viewport_size
        self.page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": viewport["width"],
                                                   "height": min(bottom + 40, viewport["height"])})
        self.page.set_viewport_size(size)
        return path
