"""Headless Chromium for the report tests: find (or, with USVFLOW_REQUIRE_CHROMIUM=1, install) the
Debian ``chromium``, load a page, run scripted steps over the DevTools protocol (aiohttp websocket),
read the DOM and take screenshots."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--allow-file-access-from-files"]  # fmt: skip


def chromium() -> str:
    """The chromium executable; installed with apt when USVFLOW_REQUIRE_CHROMIUM=1, else skip."""
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name)
        if exe:
            return exe
    if os.environ.get("USVFLOW_REQUIRE_CHROMIUM") == "1":
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True
        )
        exe = shutil.which("chromium")
        if exe:
            return exe
        pytest.fail("USVFLOW_REQUIRE_CHROMIUM=1 but apt did not install chromium")
    pytest.skip(
        "no headless chromium (Debian package `chromium`; set USVFLOW_REQUIRE_CHROMIUM=1 to install it)"
    )


class Page:
    """One page in a fresh headless Chromium, driven over the DevTools protocol."""

    def __init__(self, url: str, width: int = 1400, height: int = 1000):
        self.url, self.width, self.height = url, width, height

    async def __aenter__(self):
        import aiohttp

        self.profile = tempfile.mkdtemp(prefix="usvflow-chromium-")
        self.proc = subprocess.Popen(
            [chromium(), *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = Path(self.profile) / "DevToolsActivePort"
        t0 = time.time()
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() - t0 > 60 or self.proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools server")
            await asyncio.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as r:
            targets = await r.json(content_type=None)
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        self.ws = await self.session.ws_connect(ws_url, max_msg_size=0)
        self._id = 0
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        await self.send("Page.navigate", url=self.url)
        await self.wait_for("document.readyState === 'complete'")
        return self

    async def __aexit__(self, *exc):
        try:
            await self.ws.close()
            await self.session.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    async def send(self, method: str, **params):
        self._id += 1
        mid = self._id
        await self.ws.send_str(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads((await self.ws.receive(timeout=120)).data)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def eval(self, expr: str):
        r = await self.send(
            "Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait_for(self, expr: str, timeout: float = 60.0):
        t0 = time.time()
        while time.time() - t0 < timeout:
            try:
                if await self.eval(f"!!({expr})"):
                    return
            except RuntimeError:
                pass
            await asyncio.sleep(0.25)
        raise TimeoutError(f"page {self.url}: {expr} not true after {timeout} s")

    async def screenshot(self, path) -> Path:
        r = await self.send("Page.captureScreenshot", format="png")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(r["data"]))
        return path


async def click_call(p: Page, uid: str) -> dict:
    """A real mouse click on call ``uid``'s bar in a session explorer; once its spectrogram and video
    frame are shown, what the page shows (title, frame title, image widths, pose nodes, source)."""
    box = await p.eval(f"(()=>{{const r=document.getElementById('call-{uid}').getBoundingClientRect();"
                       "return [r.x + r.width/2, r.y + r.height/2];})()")  # fmt: skip
    for kind in ("mousePressed", "mouseReleased"):
        await p.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)  # fmt: skip
    await p.wait_for(f"document.body.dataset.shown === '{uid}'")
    await p.wait_for("document.getElementById('frame').naturalWidth > 0 && "
                     "document.getElementById('spectrogram').naturalWidth > 0")  # fmt: skip
    return await p.eval("""(()=>({title: document.getElementById('call-title').textContent,
        frame: document.getElementById('frame-title').textContent,
        spec: document.getElementById('spectrogram').naturalWidth,
        img: document.getElementById('frame').naturalWidth,
        nodes: document.querySelectorAll('#arena circle.node').length,
        source: !!document.getElementById('source'),
        features: document.getElementById('features').textContent}))()""")


def png_is_not_blank(path) -> float:
    """Fraction of pixels that differ from the most common colour (a rendered page is not one colour)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(a, axis=0, return_counts=True)
    return 1.0 - counts.max() / len(a)
