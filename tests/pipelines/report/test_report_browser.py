"""The reports of the demo release, opened in headless Chromium as a person would open them:
the charts are drawn, and no request leaves the page. Screenshots go to test-artifacts/.

Chromium is Debian's `chromium` package (tests/browser_setup.sh installs it). It is driven
over the DevTools protocol on a pipe (`--remote-debugging-pipe`), so nothing listens on a port
and no client library is needed. Two independent witnesses of the network: the page's own
DevTools Network events, and Chromium's net log, in which any request a page makes carries the
page as initiator (Chromium's own background services show `not an origin`). As a guard, every
host resolves to nothing and every proxied request goes to a closed local port.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import REPO

from gristmill.pipelines.report import run as report

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--no-pings",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
CHART_PROBE = """JSON.stringify([...document.querySelectorAll('svg')].map(s => {
  const box = s.getBoundingClientRect();
  const bars = [...s.querySelectorAll('rect')].filter(r => r.getBoundingClientRect().width > 0);
  return {width: box.width, height: box.height, bars: bars.length};
}))"""


def _browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip("chromium not found: install it with `bash tests/browser_setup.sh` (Debian)")
    return found


class DevTools:
    """A minimal DevTools-protocol client over Chromium's pipe (fd 3 in, fd 4 out)."""

    def __init__(self, browser: str, profile: Path, netlog: Path):
        to_chrome, self._in = os.pipe()
        self._out, from_chrome = os.pipe()

        def fds():
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        args = [browser, *FLAGS, f"--user-data-dir={profile}", f"--log-net-log={netlog}"]
        self.proc = subprocess.Popen(
            [*args, "about:blank"],
            pass_fds=(3, 4),
            preexec_fn=fds,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _recv(self) -> dict:
        while b"\0" not in self._buf:
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                raise EOFError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg: dict = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._in, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._recv()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._recv())

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError, RuntimeError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._in)
        os.close(self._out)


FIT_PROBE = """JSON.stringify({
  page: document.documentElement.scrollWidth,
  charts: [...document.querySelectorAll('svg.chart')].map(s => {
    const box = s.getBoundingClientRect();
    return {left: box.left, right: box.right, width: box.width};
  }),
  tables: [...document.querySelectorAll('.scroll')].map(d => d.getBoundingClientRect().right),
  axisLabels: document.querySelectorAll('svg .axis-label').length,
  font: Math.min(...[...document.querySelectorAll('svg.chart')].map(s => {
    const box = s.getBoundingClientRect();
    return 12 * box.width / s.viewBox.baseVal.width;
  })),
})"""


def render(page: Path, tmp: Path, screenshot: Path, width: int = 1200) -> dict:
    """Opens `page` in a window `width` px wide; returns the chart probe, the fit probe, the
    page's requests and the net log's URLs."""
    netlog = tmp / "netlog.json"
    tools = DevTools(_browser(), tmp / "profile", netlog)
    try:
        target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        sid = session["sessionId"]
        tools.call("Network.enable", session=sid)
        tools.call("Page.enable", session=sid)
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
            sid,
        )
        tools.call("Page.navigate", {"url": page.as_uri()}, sid)
        tools.wait_for("Page.loadEventFired")
        probe = tools.call(
            "Runtime.evaluate", {"expression": CHART_PROBE, "returnByValue": True}, sid
        )
        fit = tools.call("Runtime.evaluate", {"expression": FIT_PROBE, "returnByValue": True}, sid)
        shot = tools.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, sid
        )
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        requests = [
            e["params"]["request"]["url"]
            for e in tools.events
            if e.get("method") == "Network.requestWillBeSent"
        ]
    finally:
        tools.close()
    return {
        "charts": json.loads(probe["result"]["value"]),
        "fit": json.loads(fit["result"]["value"]),
        "requests": requests,
        "netlog": _page_requests(netlog),
    }


def _page_requests(netlog: Path) -> list[str]:
    """URLs of network requests that a page initiated (Chromium's own have no origin)."""
    raw = netlog.read_text(encoding="utf-8").rstrip()
    if not raw.endswith("}"):  # a log cut short by the browser's exit: close its event list
        raw = raw.rstrip(",\n") + "]}"
    log = json.loads(raw)
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]


@pytest.fixture(scope="module")
def demo(request, tmp_path_factory) -> Path:
    _browser()  # skip before the job runs when there is no browser
    root = tmp_path_factory.mktemp("browser") / "release"
    shutil.copytree(request.getfixturevalue("demo_run")[0], root)
    report.write_run_report(str(root))  # `gristmill report` rebuilds what the job wrote
    return root


def test_run_report_draws_its_charts_offline(demo, tmp_path):
    page = demo / "reports/run.html"
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    seen = render(page, tmp_path, ARTIFACTS / "run.png")
    charts = seen["charts"]
    assert len(charts) >= 5, charts  # funnel x2, drops, languages, lengths at least
    assert all(c["width"] > 100 and c["height"] > 20 and c["bars"] > 0 for c in charts), charts
    assert seen["requests"] == [page.as_uri()]  # the page itself, nothing else
    assert seen["netlog"] == []
    assert (ARTIFACTS / "run.png").stat().st_size > 20_000


@pytest.mark.parametrize("width", [400, 1400])
def test_run_report_fits_the_screen(demo, tmp_path, width):
    """On a 400 px phone and a 1400 px desktop: no chart is cut off or makes the page scroll
    sideways (wide tables scroll in their own box), every axis is labelled, and the charts'
    text stays readable. Screenshots: test-artifacts/run-400.png, run-1400.png."""
    page = demo / "reports/run.html"
    seen = render(page, tmp_path, ARTIFACTS / f"run-{width}.png", width)
    fit = seen["fit"]
    assert fit["page"] <= width, fit  # nothing makes the page wider than the screen
    assert fit["charts"] and all(c["left"] >= 0 and c["right"] <= width for c in fit["charts"])
    assert all(right <= width for right in fit["tables"])
    assert fit["axisLabels"] >= len(fit["charts"])  # bar charts one label, histograms two
    assert fit["font"] >= (8.5 if width == 400 else 12), fit["font"]
    assert seen["requests"] == [page.as_uri()]


@pytest.mark.parametrize("width", [400, 1400])
def test_privacy_report_renders_offline(demo, tmp_path, width):
    """At 400 and 1400 px: the bar charts and the score histograms (with their y-axis) drawn,
    none wider than the screen. Screenshots: test-artifacts/privacy-400.png, privacy-1400.png."""
    page = demo / "reports/privacy.html"
    if not page.exists():
        pytest.skip("the demo release has no reports/privacy.html (the PII stage did not run)")
    seen = render(page, tmp_path, ARTIFACTS / f"privacy-{width}.png", width)
    drawn = [c for c in seen["charts"] if c["width"] > 50 and c["bars"] > 0]
    assert drawn, seen["charts"]  # the findings per entity type, at least
    assert seen["fit"]["page"] <= width, seen["fit"]
    assert all(c["width"] <= width for c in seen["charts"]), seen["charts"]
    assert seen["requests"] == [page.as_uri()]
    assert seen["netlog"] == []


def test_the_check_sees_a_page_that_reaches_out(tmp_path):
    """The witnesses work: a page with one remote image is caught by both."""
    page = tmp_path / "leaky.html"
    page.write_text('<html><body><img src="https://example.invalid/pixel.png"></body></html>')
    seen = render(page, tmp_path, tmp_path / "leaky.png")
    assert "https://example.invalid/pixel.png" in seen["requests"]
    assert "https://example.invalid/pixel.png" in seen["netlog"]
