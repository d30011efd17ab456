"""Running a scenario without JavaScript: a plain form POST, then the first step."""

from __future__ import annotations

import re

import httpx


def post_run(server, **fields: str) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        page = client.get("/scenarios/async-io/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return client.post(
            "/scenarios/async-io/run/",
            data={"csrfmiddlewaretoken": token, **fields},
            headers={"Referer": str(page.url)},
        )


def test_it_records_the_run_and_opens_its_first_step(traced_server):
    response = post_run(traced_server, requests="2", delay_ms="20")

    assert response.status_code == 302
    location = response.headers["location"]
    assert re.fullmatch(r"/scenarios/async-io/\?recording=[0-9a-f]{16}&step=1", location)
    page = httpx.get(traced_server.base_url + location)
    assert re.search(r"Step <strong>1</strong> of (\d+)", page.text)
    assert "Request received: GET /run/async-io/?delay_ms=20" in page.text


def test_it_explains_bad_input_and_runs_nothing(traced_server):
    response = post_run(traced_server, requests="2", delay_ms="soon")

    assert response.status_code == 400
    # The page again, the message beside the field it is about, the value kept to mend.
    message = "delay_ms must be a whole number from 0 to 10000."
    field = response.text.split('name="delay_ms"')[1]
    assert 'value="soon"' in field.split(">")[0]
    assert f'<span class="field-error" role="alert">{message}</span>' in field.split("</label>")[1]
    assert "Could not run" not in response.text
