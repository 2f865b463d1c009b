"""Headless Chromium driven over the DevTools protocol: print a bulletin to PDF, take a screenshot.

Why Chromium and not a Python PDF library: the PDF is then the very HTML the email carries,
laid out by a real browser engine (tables, images, fonts as a reader sees them), and Chromium
writes a tagged PDF with a document outline from the headings, which screen readers use. The
same browser runs the accessibility check in the tests, so what is checked is what is printed.

The browser is Debian's `chromium` package (or whatever `REVIEWS_CHROMIUM` names); nothing here
downloads a browser. It is started with a throw-away profile, no network (every host name
resolves to nothing, and pages are local files), and is always stopped on exit.

Only the standard library and `websockets` (already a pinned dependency of Airflow) are used.
Timeouts use the monotonic clock; nothing here reads the wall clock.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "REVIEWS_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
A4_INCHES = (8.27, 11.69)
FLAGS = (
    "--headless",
    "--no-sandbox",  # tasks and CI run as root or in containers without user namespaces
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no page may reach the network (loopback only)
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    """Chromium could not be found, started or driven."""


def find_chromium(explicit: str | None = None) -> str:
    """The browser executable: `explicit`, else $REVIEWS_CHROMIUM, else the first on PATH."""
    for name in (explicit, os.environ.get(CHROMIUM_ENV), *CANDIDATES):
        if not name:
            continue
        path = shutil.which(name) or (name if Path(name).is_file() and os.access(name, os.X_OK) else None)
        if path:
            return path
    raise BrowserError(
        "headless Chromium is needed to print bulletins as PDF but was not found: install Debian's "
        f"`chromium` package (apt-get install chromium) or set {CHROMIUM_ENV} to the browser's path"
    )


def chromium_available(explicit: str | None = None) -> bool:
    try:
        find_chromium(explicit)
        return True
    except BrowserError:
        return False


class HeadlessChromium:
    """One browser process for a batch of pages; use as a context manager."""

    def __init__(self, executable: str | None = None, *, timeout: float = 60.0):
        self.executable = find_chromium(executable)
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._ws = None
        self._next_id = 0
        self._events: list[dict] = []
        self._dir: Path | None = None

    # -- process ----------------------------------------------------------------------------

    def __enter__(self) -> "HeadlessChromium":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        from websockets.sync.client import connect

        self._dir = Path(tempfile.mkdtemp(prefix="reviews-chromium-"))
        profile = self._dir / "profile"
        log = (self._dir / "chromium.log").open("wb")
        try:
            self._proc = subprocess.Popen(
                [self.executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            self._cleanup()
            raise BrowserError(f"cannot start {self.executable}: {exc}") from None
        finally:
            log.close()
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while True:
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    break
            if self._proc.poll() is not None or time.monotonic() > deadline:
                tail = (self._dir / "chromium.log").read_text(errors="replace")[-1500:]
                self.close()
                raise BrowserError(f"Chromium did not start (exit {self._proc.returncode if self._proc else '?'}): {tail}")
            time.sleep(0.05)
        url = f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        try:
            self._ws = connect(url, max_size=None, open_timeout=self.timeout, proxy=None)
        except TypeError:  # older websockets without the proxy argument
            self._ws = connect(url, max_size=None, open_timeout=self.timeout)

    def close(self) -> None:
        if self._ws is not None:
            try:
                self.send("Browser.close")
            except Exception:  # noqa: BLE001 - closing anyway
                pass
            try:
                self._ws.close()
            except Exception:  # noqa: BLE001
                pass
            self._ws = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- protocol ---------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        if self._ws is None:
            raise BrowserError("the browser is not running")
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium did not answer {method} within {self.timeout:.0f}s")
            try:
                raw = self._ws.recv(timeout=left)
            except TimeoutError:
                continue
            data = json.loads(raw)
            if data.get("id") == self._next_id:
                if "error" in data:
                    raise BrowserError(f"{method} failed: {data['error'].get('message')} {data['error'].get('data', '')}".strip())
                return data.get("result", {})
            if "method" in data:
                self._events.append(data)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, ev in enumerate(self._events):
                if ev["method"] == method and (session is None or ev.get("sessionId") == session):
                    return self._events.pop(i).get("params", {})
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium sent no {method} within {self.timeout:.0f}s")
            try:
                raw = self._ws.recv(timeout=left)
            except TimeoutError:
                continue
            data = json.loads(raw)
            if "method" in data:
                self._events.append(data)

    def new_page(self, *, width: int = 820, height: int = 1100) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        self.send("Page.enable", session=session)
        self.send("Runtime.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        return page

    @property
    def workdir(self) -> Path:
        if self._dir is None:
            raise BrowserError("the browser is not running")
        return self._dir


class Page:
    def __init__(self, browser: HeadlessChromium, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session
        self._n = 0

    def _send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, session=self.session)

    def load_html(self, html: str) -> None:
        """Show this HTML (written to a local file, so large inline images are no problem)."""
        self._n += 1
        path = self.browser.workdir / f"page-{self.session[:8]}-{self._n}.html"
        path.write_text(html, encoding="utf-8")
        self.load_file(path)

    def load_file(self, path: Path) -> None:
        self._send("Page.navigate", {"url": Path(path).resolve().as_uri()})
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        result = self._send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": await_promise, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed in the page: {text}")
        return result.get("result", {}).get("value")

    def screenshot(self, *, full_page: bool = True) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self._send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        return base64.b64decode(self._send("Page.captureScreenshot", params)["data"])

    def pdf(self, *, title: str = "", footer: str = "") -> bytes:
        """A4 portrait, backgrounds printed, page numbers in the footer, tagged and outlined."""
        small = "font-family:Arial,Helvetica,sans-serif;font-size:8px;color:#333;width:100%;padding:0 12mm;"
        footer_html = (
            f'<div style="{small}display:flex;justify-content:space-between;">'
            f"<span>{_escape(footer or title)}</span>"
            '<span>Page <span class="pageNumber"></span> of <span class="totalPages"></span></span></div>'
        )
        params = {
            "paperWidth": A4_INCHES[0],
            "paperHeight": A4_INCHES[1],
            "marginTop": 0.55,
            "marginBottom": 0.7,
            "marginLeft": 0.5,
            "marginRight": 0.5,
            "printBackground": True,
            "displayHeaderFooter": True,
            "headerTemplate": "<span></span>",
            "footerTemplate": footer_html,
            "generateTaggedPDF": True,
            "generateDocumentOutline": True,
        }
        data = base64.b64decode(self._send("Page.printToPDF", params)["data"])
        return data

    def close(self) -> None:
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        except BrowserError:
            pass


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PDF_DATE = re.compile(rb"/(CreationDate|ModDate) \(D:(\d{14})([^)]*)\)")


def stable_pdf(data: bytes, stamp: str) -> bytes:
    """Replace the PDF's creation and modification dates by `stamp` (YYYYMMDDHHMMSS).

    Chromium stamps the wall-clock time into the PDF; the bulletin's date (its period end) is
    the meaningful one, and a fixed stamp makes a rebuild byte-identical. The replacement has
    the same length, so the cross-reference offsets stay valid.
    """
    if not re.fullmatch(r"\d{14}", stamp):
        raise ValueError(f"stamp must be YYYYMMDDHHMMSS, not {stamp!r}")

    def repl(m: re.Match) -> bytes:
        tz = m.group(3)
        fixed_tz = (b"+00'00'" if len(tz) == 7 else (b"Z" if len(tz) == 1 else tz))
        return b"/" + m.group(1) + b" (D:" + stamp.encode() + fixed_tz + b")"

    return _PDF_DATE.sub(repl, data)


def print_pdfs(jobs: list[tuple[str, Path, str]], executable: str | None = None) -> list[Path]:
    """Print each (html, destination, title) to PDF with one browser; write files atomically."""
    written = []
    if not jobs:
        return written
    with HeadlessChromium(executable) as browser:
        page = browser.new_page()
        for html, dest, title in jobs:
            page.load_html(html)
            data = page.pdf(title=title)
            dest = Path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
            written.append(dest)
    return written
