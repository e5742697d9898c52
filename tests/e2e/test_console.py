"""The console in a real headless Chromium: every view, live updates, the actions that
change state, portal links, and the first render with 10,000 jobs stored. Screenshots of
each view are saved under build/artifacts/console/ (looked at, not just taken: the
README shows two of them)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from acceptd.core.settings import Settings
from tests.support.browser import ARTIFACTS, Browser, browsers
from tests.support.constants import API_KEY
from tests.support.http import authed_session, call
from tests.support.receiver import Answer
from tests.support.waiting import wait_until


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # Long-polls and streams end quickly so a test's teardown never waits on the browser.
    return make_settings(stream_max_seconds=30, bootstrap_operator=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from browsers()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with authed_session() as session:
        yield session


def sign_in(browser: Browser, api_url: str) -> None:
    browser.go(f"{api_url}/ui/")
    browser.js("sessionStorage.clear()")
    browser.go(f"{api_url}/ui/#/signin")
    browser.one("#api-key").send_keys(API_KEY)
    browser.click("#signin")
    browser.until(lambda: "operator" in browser.text("#who"), what="signed in")


async def test_a_submitted_job_appears_and_its_progress_bar_moves(
    browser: Browser, api_url: str, worker: None, http: aiohttp.ClientSession
) -> None:
    await asyncio.to_thread(sign_in, browser, api_url)
    slow = {"value": 1, "delay_ms": 4000, "progress_steps": 8}
    job = await call(http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": slow})

    def watch() -> list[int]:
        row = f'[data-job="{job["id"]}"]'
        browser.one(row)  # appeared without a reload: the list refreshes itself
        browser.screenshot("jobs")
        browser.click(f"{row} a")
        browser.one("#job-head [role=progressbar]")
        seen: list[int] = []
        deadline = time.monotonic() + 20
        read = (
            "const b = document.querySelector('#job-head [role=progressbar]');"
            "return b ? Number(b.getAttribute('aria-valuenow')) : null"
        )
        while time.monotonic() < deadline:
            value = browser.js(read)
            if value is not None and (not seen or seen[-1] != value):
                seen.append(int(value))
            if seen and seen[-1] == 100 and "succeeded" in browser.text("#job-head .badge"):
                break
            if len(seen) == 3:
                browser.screenshot("job")
            time.sleep(0.05)  # sampling the bar, to see it move
        return seen

    seen = await asyncio.to_thread(watch)
    assert len(seen) >= 3, seen  # it moved, more than once, with no reload
    assert seen == sorted(seen)
    assert seen[-1] == 100
    assert await asyncio.to_thread(browser.console_errors) == []  # no CSP violation either


async def test_a_failed_delivery_is_redelivered_from_the_job_page(
    browser: Browser,
    api_url: str,
    worker: None,
    dispatcher: Any,
    receiver: tuple[Any, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver
    recording.default = Answer(status=500, body="receiver down")
    echo = {"type": "demo.echo", "input": {"value": 2}, "callback_url": url}
    job = await call(http, "POST", f"{api_url}/v1/jobs", echo)

    async def failed() -> bool:
        found = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}/deliveries")
        return bool(found["items"]) and found["items"][0]["status"] == "failed"

    await wait_until(failed, timeout=30)
    recording.default = Answer(status=200)

    def redeliver() -> str:
        sign_in(browser, api_url)
        browser.go(f"{api_url}/ui/#/jobs/{job['id']}")
        browser.until(lambda: "failed" in browser.text("[data-delivery] .badge"), what="failed")
        attempts = len(browser.css("[data-delivery] [data-attempt]"))
        assert "receiver down" in browser.text("[data-delivery] table")  # the response excerpt
        browser.click("[data-redeliver]")
        browser.until(
            lambda: len(browser.css("[data-delivery] [data-attempt]")) == attempts + 1,
            what="a new attempt row",
        )
        browser.until(lambda: "succeeded" in browser.text("[data-delivery] .badge"), what="ok")
        browser.js("document.querySelector('#deliveries').scrollIntoView()")
        browser.screenshot("job-deliveries")
        return browser.text(f'[data-delivery] [data-attempt="{attempts + 1}"]')

    last_row = await asyncio.to_thread(redeliver)
    assert "200" in last_row


async def test_a_review_is_completed_from_the_inbox(
    browser: Browser, api_url: str, worker: None, http: aiohttp.ClientSession
) -> None:
    review_input = {"subject": "refund 12", "content": {"amount": 40}}
    job = await call(
        http, "POST", f"{api_url}/v1/jobs", {"type": "demo.review", "input": review_input}
    )

    async def waiting() -> bool:
        found = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}")
        return bool(found["status"] == "awaiting_input")

    await wait_until(waiting, timeout=20)

    def review() -> str:
        sign_in(browser, api_url)
        browser.go(f"{api_url}/ui/#/review")
        card = f'[data-review="{job["id"]}"]'
        browser.one(card)
        assert "refund 12" in browser.text(card)
        assert "left" in browser.text(f"{card} [data-deadline]")
        # Checked in the browser before it is sent: too long a comment never leaves the page
        # (set by script: the field's maxlength already stops typing past the limit).
        browser.js("arguments[0].value = 'x'.repeat(2001)", browser.one(f"#{job['id']}-comment"))
        browser.click(f"[data-complete='{job['id']}']")
        browser.until(
            lambda: "at most 2000" in browser.text(f"#{job['id']}-comment-error"),
            what="field error",
        )
        browser.screenshot("review")
        comment = browser.one(f"#{job['id']}-comment")
        comment.clear()
        comment.send_keys("looks right")
        browser.click(f"#{job['id']}-approved")
        browser.click(f"[data-complete='{job['id']}']")
        browser.until(lambda: not browser.css(card), what="card gone")
        return "done"

    await asyncio.to_thread(review)
    done = await call(http, "GET", f"{api_url}/v1/jobs/{job['id']}")
    assert done["status"] == "succeeded"
    assert done["result"] == {"approved": True, "comment": "looks right"}


async def test_endpoints_are_created_rotated_and_tested(
    browser: Browser,
    api_url: str,
    dispatcher: Any,
    receiver: tuple[Any, str],
    http: aiohttp.ClientSession,
) -> None:
    recording, url = receiver

    def manage() -> tuple[str, str]:
        sign_in(browser, api_url)
        browser.go(f"{api_url}/ui/#/endpoints")
        # The event picker lists what GET /v1/event-types serves, operational events too.
        browser.until(lambda: "delivery.exhausted" in browser.text("#ep-events"), what="events")
        browser.one("#ep-url").send_keys(url)
        browser.one("#ep-description").send_keys("console test")
        browser.one("#ep-headers").send_keys("X-Api-Key: from-the-console")
        browser.one("#ep-retries").send_keys("1, 5")
        browser.click("#ep-create")
        first = browser.until(lambda: browser.text("#shown-secret"), what="secret")
        endpoint = browser.one("[data-endpoint]").get_attribute("data-endpoint")
        options = browser.text(f"[data-options='{endpoint}']")
        assert "X-Api-Key" in options
        assert "1, 5 s" in options
        assert "from-the-console" not in browser.text("main")  # the value is never shown
        browser.click(f"[data-rotate='{endpoint}']")

        def rotated() -> str | None:
            shown = browser.text("#shown-secret")
            return shown if shown != first else None

        second = browser.until(rotated, what="new secret")
        browser.click(f"[data-test='{endpoint}']")
        browser.until(
            lambda: "100% of 1" in browser.text(f"[data-stats='{endpoint}']"),
            timeout=20,
            what="stats",
        )
        browser.screenshot("endpoints")
        return first, second

    first, second = await asyncio.to_thread(manage)
    assert first.startswith("whsec_")
    assert second.startswith("whsec_")
    assert first != second
    (test_event,) = recording.events("webhook.test")
    from acceptd.webhooks.receiver import verify_event

    verify_event(second, test_event.headers, test_event.body)  # signed with the new secret
    assert test_event.headers["X-Api-Key"] == "from-the-console"
    found = await call(http, "GET", f"{api_url}/v1/endpoints")
    assert found["items"][0]["description"] == "console test"


async def test_batches_and_system_views(
    browser: Browser, api_url: str, worker: None, dispatcher: Any, http: aiohttp.ClientSession
) -> None:
    items = [{"type": "demo.echo", "input": {"value": i, "fail": i == 3}} for i in range(8)]
    batch = await call(http, "POST", f"{api_url}/v1/batches", {"items": items})

    def look() -> tuple[str, str, str]:
        sign_in(browser, api_url)
        browser.go(f"{api_url}/ui/#/batches")
        browser.until(
            lambda: "completed" in browser.text(f"[data-batch='{batch['id']}']"),
            timeout=20,
            what="batch completed",
        )
        browser.screenshot("batches")
        browser.go(f"{api_url}/ui/#/system")
        browser.until(lambda: len(browser.css("#processes tbody tr")) >= 2, what="processes")
        browser.one("[data-chart='jobs'] rect")
        # How the workers are shared: the tenant's one long job running, all of the share.
        browser.until(lambda: "100 %" in browser.text("#tenants"), timeout=20, what="tenants")
        browser.screenshot("system")
        return (
            browser.text("#processes"),
            browser.text("[data-chart='jobs'] figcaption"),
            browser.text("[data-tenant='default']"),
        )

    long = {"type": "demo.echo", "input": {"value": 0, "delay_ms": 15_000}}
    await call(http, "POST", f"{api_url}/v1/jobs", long)
    processes, caption, shares = await asyncio.to_thread(look)
    assert "worker" in processes
    assert "dispatcher" in processes
    assert "alive" in processes
    assert "9 in the last hour" in caption
    assert shares.split() == ["default", "0", "1", "100", "%", "1", "no", "cap"]


async def test_a_schedule_is_created_paused_run_and_deleted_from_the_console(
    browser: Browser, api_url: str, worker: None, http: aiohttp.ClientSession
) -> None:
    def create() -> tuple[str, str, str]:
        sign_in(browser, api_url)
        browser.console_errors()  # read (and so dropped): the earlier tests' pages' errors
        browser.go(f"{api_url}/ui/#/schedules")
        browser.one("#no-schedules")
        # The time zone starts as the browser's; the job's input is a form from its schema.
        zone = browser.js("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        assert browser.one("#sc-timezone").get_attribute("value") == zone
        browser.until(
            lambda: browser.js("return document.querySelector('#sc-type').value"), what="job types"
        )
        browser.js(
            "const t = document.querySelector('#sc-type'); t.value = 'demo.echo';"
            "t.dispatchEvent(new Event('change'))"
        )
        browser.one("#sc-input-value").send_keys('{"report": "daily"}')
        # A cron the server refuses: its 422 is shown next to the field.
        browser.one("#sc-cron").send_keys("61 * * * *")
        browser.click("#sc-create")
        cron_error = browser.until(lambda: browser.text("#sc-cron-error"), what="cron error")
        browser.screenshot("schedule-form-error")
        browser.one("#sc-cron").clear()
        browser.one("#sc-cron").send_keys("0 9 * * 1-5")
        browser.one("#sc-timezone").clear()
        browser.one("#sc-timezone").send_keys("Europe/Paris")
        browser.click("#sc-create")
        row = browser.one("#schedules tbody tr")
        schedule_id = row.get_attribute("data-schedule")
        assert browser.text("#sc-cron-error") == ""
        next_run = browser.until(lambda: browser.text(f"[data-next='{schedule_id}']"), what="next")
        browser.screenshot("schedules")
        return schedule_id, cron_error, next_run

    schedule_id, cron_error, next_run = await asyncio.to_thread(create)
    assert cron_error  # the server's words, next to the cron field
    assert next_run.startswith("in ")  # relative, then the absolute time
    made = await call(http, "GET", f"{api_url}/v1/schedules/{schedule_id}")
    assert made["cron"] == "0 9 * * 1-5"
    assert made["timezone"] == "Europe/Paris"
    assert made["job"]["type"] == "demo.echo"
    assert made["job"]["input"]["value"] == {"report": "daily"}

    def pause_and_run() -> tuple[str, str]:
        row = f"[data-schedule='{schedule_id}']"
        browser.click(f"[data-pause='{schedule_id}']")
        browser.until(
            lambda: "paused" in browser.text(f"[data-next='{schedule_id}']"), what="paused"
        )
        assert browser.text(f"[data-pause='{schedule_id}']") == "Resume"
        browser.click(f"[data-run='{schedule_id}']")
        job_id = browser.one("#ran [data-ran]").get_attribute("data-ran")
        hrefs = "return [...document.querySelectorAll(arguments[0])].map(a => a.href).join()"
        browser.until(
            lambda: job_id in browser.js(hrefs, f"[data-last='{schedule_id}'] a"),
            what="last run links the job",
        )
        browser.screenshot("schedules-paused")
        browser.click(f"{row} td:nth-child(2)")  # a click on the row opens the schedule
        browser.one(f"#schedule-jobs [data-job='{job_id}']")
        browser.until(
            lambda: "succeeded" in browser.text(f"#schedule-jobs [data-job='{job_id}']"),
            timeout=20,
            what="the job it made ran",
        )
        browser.screenshot("schedule")
        head = browser.text("#schedule-head")
        browser.click(f"#schedule-jobs [data-job='{job_id}'] a")
        browser.until(lambda: schedule_id in browser.text("#job-schedule"), what="job's schedule")
        return job_id, head

    job_id, head = await asyncio.to_thread(pause_and_run)
    assert "paused" in head
    assert "Europe/Paris" in head
    paused = await call(http, "GET", f"{api_url}/v1/schedules/{schedule_id}")
    assert paused["paused"] is True
    assert paused["next_run_at"] is None
    assert paused["last_job_id"] == job_id
    job = await call(http, "GET", f"{api_url}/v1/jobs/{job_id}")
    assert job["schedule_id"] == schedule_id

    def resume_and_delete() -> str:
        browser.click("#job-schedule")
        browser.click(f"[data-pause='{schedule_id}']")  # Resume
        browser.until(lambda: "in " in browser.text("#next-run"), what="resumed")
        browser.click(f"[data-delete='{schedule_id}']")
        browser.driver.switch_to.alert.accept()
        browser.one("#no-schedules")  # back on the list, which is empty again
        return str(browser.driver.current_url)

    address = await asyncio.to_thread(resume_and_delete)
    assert address.endswith("#/schedules")
    gone = await http.get(f"{api_url}/v1/schedules/{schedule_id}")
    assert gone.status == 404
    assert (await call(http, "GET", f"{api_url}/v1/jobs/{job_id}"))["id"] == job_id  # stays
    errors = await asyncio.to_thread(browser.console_errors)
    # Only the refused cron's answer, which Chromium logs as a failed load: no CSP violation.
    assert [e for e in errors if "status of 422" not in e] == []


async def test_portal_links_open_once_and_expire(
    browser: Browser, api_url: str, http: aiohttp.ClientSession
) -> None:
    tenant_link = await call(http, "POST", f"{api_url}/v1/portal-links", {"scope": "tenant"})
    endpoints_link = await call(
        http, "POST", f"{api_url}/v1/portal-links", {"scope": "endpoints", "ttl_seconds": 600}
    )
    short_link = await call(http, "POST", f"{api_url}/v1/portal-links", {"ttl_seconds": 1})

    def open_link(url: str) -> tuple[str, str, str]:
        browser.go(f"{api_url}/ui/")
        browser.js("sessionStorage.clear()")
        browser.go("about:blank")
        browser.go(url)
        browser.until(lambda: browser.text("#who") or browser.css("#portal-error"), what="outcome")
        return browser.text("#who"), browser.text("#nav"), browser.driver.current_url

    who, nav, address = await asyncio.to_thread(open_link, tenant_link["url"])
    assert "portal" in who
    assert "Jobs" in nav
    assert "System" not in nav  # admin only
    assert "token=" not in address  # taken out of the address bar and history at once
    await asyncio.to_thread(browser.screenshot, "portal-tenant")

    who, _, _ = await asyncio.to_thread(open_link, tenant_link["url"])  # reused
    assert who == ""
    assert "used already" in await asyncio.to_thread(browser.text, "#portal-error")

    await asyncio.sleep(1.5)  # past the short link's one second
    who, _, _ = await asyncio.to_thread(open_link, short_link["url"])  # expired
    assert who == ""

    who, nav, _ = await asyncio.to_thread(open_link, endpoints_link["url"])
    assert "portal-endpoints" in who
    assert nav.split() == ["Endpoints"]
    status = await asyncio.to_thread(
        browser.js,
        "const s = JSON.parse(sessionStorage.getItem('acceptd.console'));"
        "return fetch('/v1/jobs', {headers: {Authorization: 'Bearer ' + s.key}})"
        ".then(r => r.status);",
    )
    assert status == 403  # the session manages endpoints, nothing else


async def test_a_channel_portal_shows_that_customers_endpoints_only(
    browser: Browser, api_url: str, http: aiohttp.ClientSession
) -> None:
    """One customer's portal (a link with `channel`): the endpoints of that channel only,
    whoever made them, and what it makes is that customer's."""
    acme_url, globex_url = "http://127.0.0.1:9/acme-hooks", "http://127.0.0.1:9/globex-hooks"
    await call(http, "POST", f"{api_url}/v1/endpoints", {"url": acme_url, "channels": ["acme"]})
    await call(http, "POST", f"{api_url}/v1/endpoints", {"url": globex_url, "channels": ["globex"]})
    await call(http, "POST", f"{api_url}/v1/endpoints", {"url": "http://127.0.0.1:9/ops-all"})
    link = await call(
        http, "POST", f"{api_url}/v1/portal-links", {"scope": "endpoints", "channel": "acme"}
    )

    def open_portal() -> tuple[str, str]:
        browser.go(f"{api_url}/ui/")
        browser.js("sessionStorage.clear()")
        browser.go("about:blank")
        browser.go(link["url"])
        browser.until(lambda: browser.css("[data-endpoint]"), what="endpoints")
        browser.until(lambda: "job.succeeded" in browser.text("#ep-events"), what="events")
        shown = browser.text("main")
        offered = browser.text("#ep-events")
        assert "job.awaiting_input" not in offered  # nothing a portal may not subscribe to
        assert "delivery.exhausted" not in offered
        browser.one("#ep-url").send_keys("http://127.0.0.1:9/acme-second")
        browser.click("#ep-create")
        browser.until(lambda: "acme-second" in browser.text("main"), what="new one")
        browser.screenshot("portal-channel")
        return shown, browser.text("main")

    first, after = await asyncio.to_thread(open_portal)
    assert "Endpoints of acme" in first
    assert acme_url in first
    assert globex_url not in after
    assert "ops-all" not in after
    assert not await asyncio.to_thread(browser.css, "#ep-channels")  # its channel is given
    found = await call(http, "GET", f"{api_url}/v1/endpoints")
    made = [e for e in found["items"] if e["url"] == "http://127.0.0.1:9/acme-second"]
    assert made[0]["channels"] == ["acme"]


async def test_readable_at_phone_width(api_url: str, http: aiohttp.ClientSession) -> None:
    await call(http, "POST", f"{api_url}/v1/jobs", {"type": "demo.echo", "input": {"value": 1}})

    def phone() -> tuple[int, int]:
        small = Browser(390, 844)
        try:
            sign_in(small, api_url)
            small.go(f"{api_url}/ui/#/jobs")
            small.one("#jobs tbody tr")
            small.screenshot("jobs-phone")
            return small.js("return document.documentElement.scrollWidth"), small.js(
                "return window.innerWidth"
            )
        finally:
            small.quit()

    from tests.support.browser import browser_or_skip

    browser_or_skip()
    scroll_width, width = await asyncio.to_thread(phone)
    assert scroll_width <= width  # nothing sticks out sideways


async def test_schedules_readable_at_phone_width(api_url: str, http: aiohttp.ClientSession) -> None:
    weekdays = {
        "cron": "0 9 * * 1-5",
        "timezone": "America/New_York",
        "job": {"type": "demo.echo", "input": {"value": 1}},
    }
    paused = {
        "cron": "*/15 * * * *",
        "paused": True,
        "job": {"type": "demo.review", "input": {"subject": "weekly audit"}},
    }
    schedule = await call(http, "POST", f"{api_url}/v1/schedules", weekdays)
    await call(http, "POST", f"{api_url}/v1/schedules", paused)
    await call(http, "POST", f"{api_url}/v1/schedules/{schedule['id']}/trigger")

    def phone() -> list[tuple[int, int]]:
        small = Browser(390, 844)
        # Headless Chromium keeps a window at least 500 px wide: emulate the phone's 390.
        small.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
        )
        widths = []
        try:
            sign_in(small, api_url)
            small.go(f"{api_url}/ui/#/schedules")
            small.until(lambda: len(small.css("#schedules tbody tr")) == 2, what="rows")
            small.one(f"[data-last='{schedule['id']}'] a")
            small.screenshot("schedules-phone")
            widths.append(small.js("return [document.documentElement.scrollWidth, innerWidth]"))
            small.click(f"[data-schedule='{schedule['id']}'] a")
            small.one("#schedule-jobs [data-job]")
            small.screenshot("schedule-phone")
            widths.append(small.js("return [document.documentElement.scrollWidth, innerWidth]"))
            return widths
        finally:
            small.quit()

    from tests.support.browser import browser_or_skip

    browser_or_skip()
    for scroll_width, width in await asyncio.to_thread(phone):
        assert scroll_width <= width  # nothing sticks out sideways


async def test_first_render_with_ten_thousand_jobs(
    browser: Browser, api_url: str, http: aiohttp.ClientSession
) -> None:
    """Measured, not asserted against a budget (benchmarks judge speed): the figure goes to
    build/artifacts/console/first-render.json for the record."""
    for start in range(0, 10_000, 1000):
        items = [{"type": "demo.echo", "input": {"value": start + i}} for i in range(1000)]
        await call(http, "POST", f"{api_url}/v1/batches", {"items": items})

    def measure() -> list[float]:
        sign_in(browser, api_url)
        timings = []
        for _ in range(3):
            browser.go("about:blank")
            browser.go(f"{api_url}/ui/#/jobs")
            rendered = browser.until(
                lambda: browser.js("return document.body.dataset.jobsRendered"), what="render"
            )
            timings.append(float(rendered))
        assert len(browser.css("#jobs tbody tr")) == 25
        assert "10000" in browser.text(".counts")
        return timings

    timings = await asyncio.to_thread(measure)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "first-render.json").write_text(json.dumps({"jobs": 10_000, "ms": timings}))
    print(f"\nfirst render with 10,000 jobs stored: {sorted(timings)[1]:.0f} ms (median of 3)")
