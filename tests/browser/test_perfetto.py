"""Open in Perfetto: the player posts the Chrome-trace export to ui.perfetto.dev's window by
Perfetto's own postMessage handshake (PING until PONG, then the buffer). The window is a
stand-in here (the machine has no network): a frame whose postMessage the test records."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

STAND_IN = """() => {
  const frame = document.createElement("iframe");
  document.body.append(frame);
  const perfetto = frame.contentWindow;
  window.posted = [];
  perfetto.postMessage = (message, origin) => {
    window.posted.push({message: message, origin: origin});
    if (message === "PING" && window.posted.length === 3) {
      window.dispatchEvent(new MessageEvent("message", {data: "PONG", source: perfetto}));
    }
  };
  window.open = (url) => { window.opened = url; return perfetto; };
}"""


def test_it_sends_the_trace_to_perfetto_after_its_pong(page: Page, browser_server):
    page.goto(
        f"{browser_server.base_url}/scenarios/async-io/?recording=example-async-io-4-requests"
    )
    page.evaluate(STAND_IN)
    page.get_by_role("button", name="Open in Perfetto").click()
    expect(page.locator("#perfetto-status")).to_have_text("Sent to Perfetto.")

    assert page.evaluate("window.opened") == "https://ui.perfetto.dev"
    posted = page.evaluate(
        """() => window.posted.map(({message, origin}) => ({
            origin: origin,
            kind: typeof message === "string" ? message : "trace",
            text: typeof message === "string" ? null
                : new TextDecoder().decode(message.perfetto.buffer),
            title: typeof message === "string" ? null : message.perfetto.title,
        }))"""
    )
    assert {p["origin"] for p in posted} == {"https://ui.perfetto.dev"}
    assert [p["kind"] for p in posted] == ["PING", "PING", "PING", "trace"]
    exported = page.request.get(
        f"{browser_server.base_url}/traces/example-async-io-4-requests/export.chrome.json"
    ).json()
    assert json.loads(posted[-1]["text"]) == exported
    assert posted[-1]["title"] == "Async view awaiting I/O"
