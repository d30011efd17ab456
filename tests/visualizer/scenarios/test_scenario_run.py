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


def test_a_bad_value_at_a_views_address_is_explained_with_its_range(traced_server):
    for path, said in (
        ("/run/async-io/?delay_ms=abc", "delay_ms must be a whole number from 0 to 10000."),
        ("/run/async-cpu/?work=-1", "work must be a whole number from 0 to 2000000."),
        ("/run/async-file/?size_kb=1e9", "size_kb must be a whole number from 0 to 65536."),
    ):
        response = httpx.get(traced_server.base_url + path, timeout=60)

        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == f"Bad request: {said}"


def test_a_step_that_is_not_a_number_is_explained_with_the_steps_there_are(traced_server):
    page = httpx.get(
        f"{traced_server.base_url}/scenarios/async-io/"
        "?recording=example-async-io-4-requests&step=soon",
        timeout=60,
    )

    assert page.status_code == 200
    total = re.search(r"Step <strong>\d+</strong> of (\d+)", page.text)[1]
    assert f"Step must be a whole number from 1 to {total}, not &#x27;soon&#x27;." in page.text
