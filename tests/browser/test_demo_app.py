"""The browser SDK in Debian's Chromium, driving the demo service desk against a real server.

Each test clicks and types as a person would, then stops the server and reads what was stored.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from typing import Any, NamedTuple
from urllib.parse import unquote

import pytest
from tests.browser.conftest import DemoApp, DemoServer, RequestLog, accepted_events, wait_until

from stumble.privacy.detectors import kz_check_digit

pytestmark = pytest.mark.browser

FIRST_11 = "85011530010"
VALID_IIN = FIRST_11 + str(kz_check_digit(FIRST_11))
WRONG_CHECK_DIGIT_IIN = FIRST_11 + str((int(VALID_IIN[-1]) + 1) % 10)
SPACED_IIN = f"{VALID_IIN[:4]} {VALID_IIN[4:8]} {VALID_IIN[8:]}"
EMAIL = "aigerim.nurlanovna@example.kz"
PHONE = "+7 701 555 23 47"


def due_date() -> str:
    """A date the form accepts in any time zone: the day after tomorrow, UTC."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()


def by_name(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return sorted((row for row in rows if row["event_name"] == name), key=lambda row: row["ts"])


def test_a_journey_stores_clicks_screens_field_errors_attempts_and_operations(
    context: Any, demo: DemoServer
) -> None:
    app = DemoApp(context.new_page(), demo)
    app.open(ui=1)
    app.sign_in()
    app.go("New request", "request_create")
    app.fill_step_1()
    app.page.fill("#contract_number", "SD-204518")
    app.page.fill("#iin_bin", SPACED_IIN)  # 1.4.2 takes the 12 digits only as typed
    for _ in range(3):
        app.next_on_step(2)
        assert app.message("iin_bin").inner_text() == "Invalid"
    app.page.fill("#iin_bin", WRONG_CHECK_DIGIT_IIN)  # the server's check digit test fails
    with app.page.expect_response("**/demo/api/requests/check") as checked:
        app.next_on_step(2)
    assert checked.value.status == 422
    app.message("iin_bin").wait_for(state="visible")  # fill() hid the last one
    assert app.message("iin_bin").inner_text() == "Invalid"
    app.page.fill("#iin_bin", VALID_IIN)
    app.next_on_step(2)
    app.page.locator("#request-step-3").wait_for(state="visible")
    app.page.fill("[name=due_date]", due_date())
    app.next_on_step(3)
    app.wait_for_screen("request_view")
    stats = app.settle()

    rows = demo.events()
    assert stats["dropped"] == 0
    assert len(rows) == stats["sent"]  # every event sent was stored: none refused by the plan
    assert {row["ui_version"] for row in rows} == {"1.4.2"}
    assert {row["environment"] for row in rows} == {"dev"}
    assert {(row["role"], row["division"], row["region"]) for row in rows} == {
        ("operator", "hq", "almaty")
    }

    screens = [(row["screen_id"], row["route"]) for row in by_name(rows, "screen_view")]
    assert screens == [
        ("login", "/login"),
        ("home", "/"),
        ("request_create", "/requests/new"),
        ("request_view", "/requests/:id"),
    ]

    errors = [
        (row["form_id"], row["field_id"], row["step"], row["error_type"], row["attempt"])
        for row in by_name(rows, "field_error")
    ]
    assert errors == [
        ("service_request", "iin_bin", 2, "format", 1),
        ("service_request", "iin_bin", 2, "format", 2),
        ("service_request", "iin_bin", 2, "format", 3),
        ("service_request", "iin_bin", 2, "server", 4),
    ]
    submits = [
        (row["form_id"], row["step"], row["attempt"], row["status"])
        for row in by_name(rows, "form_submit")
    ]
    assert submits == [
        ("login", 1, 1, "success"),
        ("service_request", 1, 1, "success"),
        ("service_request", 2, 4, "fail"),
        ("service_request", 2, 5, "success"),
        ("service_request", 3, 1, "success"),
    ]

    clicks = Counter((row["event_name"], row["target"]) for row in rows if row["kind"] == "action")
    assert clicks == {
        ("request_next_clicked", "btn_next"): 6,
        ("request_submit_clicked", "btn_submit"): 1,
    }
    assert {row["position"] for row in by_name(rows, "request_next_clicked")} == {"footer"}

    operations = [row for row in rows if row["kind"].startswith("operation_")]
    submit = [row for row in operations if row["operation"] == "request_submit"]
    assert [row["kind"] for row in submit] == ["operation_start", "operation_step", "operation_end"]
    assert len({row["operation_id"] for row in submit}) == 1
    assert submit[1]["step_name"] == "server_response_received"
    assert submit[2]["status"] == "success"
    assert submit[2]["duration_ms"] > 0
    assert {row["operation"] for row in operations} == {"login", "request_submit"}

    # the errors add-on: the check's 422 as an http error, and API timings by route template
    http_errors = [
        (row["error_kind"], row["http_status"], row["route"]) for row in by_name(rows, "error")
    ]
    assert http_errors == [("http", 422, "/api/requests/check")]
    api_routes = {row["route"] for row in by_name(rows, "vital") if row["metric"] == "api"}
    assert {"/api/auth/login", "/api/requests/check", "/api/requests"} <= api_routes


class UiCase(NamedTuple):
    ui: int
    version: str
    typed_value: str
    hint_shown: bool
    message: str


@pytest.mark.parametrize(
    "case",
    [
        UiCase(1, "1.4.2", SPACED_IIN, hint_shown=False, message="Invalid"),
        UiCase(2, "2.0.0", VALID_IIN, hint_shown=True, message="Enter 12 digits only"),
    ],
    ids=["1.4.2", "2.0.0"],
)
def test_the_ui_versions_differ_in_mask_hint_and_message(
    context: Any, demo: DemoServer, case: UiCase
) -> None:
    app = DemoApp(context.new_page(), demo)
    app.open(ui=case.ui)
    app.sign_in()
    app.go("New request", "request_create")
    app.fill_step_1()
    app.page.locator("#iin_bin").press_sequentially(SPACED_IIN)
    assert app.page.input_value("#iin_bin") == case.typed_value
    assert app.page.locator("#iin-hint").is_visible() is case.hint_shown
    assert app.page.locator("#iin-hint").inner_text() == "12 digits, e.g. from your ID card"
    app.page.fill("#iin_bin", "12345")
    app.page.fill("#contract_number", "SD-204518")
    app.next_on_step(2)
    assert app.message("iin_bin").inner_text() == case.message
    stats = app.settle()

    rows = demo.events()
    assert len(rows) == stats["sent"]
    assert {row["ui_version"] for row in rows} == {case.version}
    assert [(row["field_id"], row["error_type"]) for row in by_name(rows, "field_error")] == [
        ("iin_bin", "format")
    ]


def needles() -> list[str]:
    """The typed values, and the forms in which they might leak."""
    phone_digits = "".join(char for char in PHONE if char.isdigit())
    return [
        VALID_IIN,
        WRONG_CHECK_DIGIT_IIN,
        SPACED_IIN,
        EMAIL,
        EMAIL.split("@", maxsplit=1)[0],
        EMAIL.replace("@", "%40"),
        PHONE,
        PHONE.replace(" ", "%20"),
        PHONE.replace(" ", "+"),
        phone_digits,
        phone_digits[1:],
    ]


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [
        needle
        for needle in needles()
        if needle.lower() in lowered or needle.lower() in unquote(lowered)
    ]


def test_no_typed_value_leaves_the_browser(
    context: Any, demo: DemoServer, requests_seen: RequestLog
) -> None:
    app = DemoApp(context.new_page(), demo)
    app.open(ui=1)
    app.sign_in(username=EMAIL, password=PHONE)
    app.go("Search", "search")
    app.page.fill("#query", VALID_IIN)
    app.page.click("#search-form button[type=submit]")
    app.page.locator("#search-status").filter(has_text="found").wait_for()
    app.page.fill("#query", f"{EMAIL} {PHONE}")
    app.page.click("#search-form button[type=submit]")
    app.page.locator("#search-status").filter(has_text="0 found").wait_for()

    app.go("New request", "request_create")
    app.fill_step_1(subject=f"{EMAIL} {PHONE} {VALID_IIN}")
    for iin, contract in [(SPACED_IIN, PHONE), (PHONE, EMAIL), (EMAIL, VALID_IIN)]:
        app.page.fill("#iin_bin", iin)
        app.page.fill("#contract_number", contract)
        app.next_on_step(2)  # refused in the browser: a format error each time
        assert app.message("iin_bin").is_visible()
    app.page.fill("#iin_bin", WRONG_CHECK_DIGIT_IIN)
    app.page.fill("#contract_number", "SD-204518")
    app.next_on_step(2)  # refused by the server's check
    app.message("iin_bin").filter(has_text="Invalid").wait_for()
    app.page.fill("#iin_bin", VALID_IIN)
    app.next_on_step(2)
    app.page.locator("#request-step-3").wait_for(state="visible")
    app.page.fill("[name=due_date]", due_date())
    app.page.fill("[name=description]", f"Call {PHONE} or write to {EMAIL}; IIN {VALID_IIN}")
    app.next_on_step(3)
    app.wait_for_screen("request_view")
    app.flush()
    app.hide()  # the beacon path too
    wait_until(
        lambda: any(r.resource_type == "ping" for r in requests_seen.batches()), what="a beacon"
    )
    app.page.close()

    batches = requests_seen.batches()
    own_api = [r for r in requests_seen.seen if "/demo/api/" in r.url]
    sent_kinds = Counter(event["kind"] for batch in batches for event in batch.batch_events())
    # the check below means something: the page talked, and field errors were reported
    assert sent_kinds["field_error"] == 3 * 2 + 1  # both fields wrong 3 times, then the server
    assert sent_kinds["action"] >= 6
    assert len(own_api) >= 6
    for request in requests_seen.seen:
        assert leaks(request.url) == [], f"{request.method} {request.url} carries typed text"
        assert leaks(request.body) == [], (
            f"the body of {request.method} {request.url} carries typed text"
        )

    rows = demo.events()
    assert rows
    assert leaks(json.dumps(rows, default=str)) == []


def test_events_queued_offline_arrive_exactly_once_when_back_online(
    context: Any, demo: DemoServer, requests_seen: RequestLog
) -> None:
    app = DemoApp(context.new_page(), demo)
    app.open()
    app.sign_in()
    app.flush()
    context.set_offline(True)
    app.go("New request", "request_create")
    app.fill_step_1()
    app.page.click("#request-step-2 [data-back]")
    app.go("Reports", "reports")
    app.go("Home", "home")
    offline = app.flush()  # fails: the SDK keeps the events and schedules a retry
    assert offline["queued"] >= 6
    assert any(request.is_batch for request in requests_seen.failed)
    assert json.loads(app.page.evaluate("localStorage.getItem('stumble.q')"))  # survives a reload

    context.set_offline(False)  # 'online' makes the SDK send at once
    wait_until(lambda: app.stats()["queued"] == 0, timeout_s=10, what="the queue to drain")
    stats = app.settle()

    rows = demo.events()
    accepted = requests_seen.accepted_event_ids()
    assert requests_seen.batch_event_ids() == accepted  # nothing tried was lost
    assert len(rows) == len(accepted) == stats["sent"]
    assert len(rows) == len({row["event_id"] for row in rows})
    screens = [row["screen_id"] for row in by_name(rows, "screen_view")]
    assert screens == ["login", "home", "request_create", "reports", "home"]


@pytest.mark.parametrize("first_reached_the_server", [False, True], ids=["refused", "ack-lost"])
def test_a_503_is_retried_and_stored_exactly_once(
    context: Any, demo: DemoServer, requests_seen: RequestLog, first_reached_the_server: bool
) -> None:
    page = context.new_page()
    answered: list[int] = []

    def first_503_then_through(route: Any) -> None:
        if answered:
            answered.append(202)
            route.continue_()
            return
        answered.append(503)
        if first_reached_the_server:
            route.fetch()  # stored, but the SDK is told 503: its retry must not double the events
        route.fulfill(
            status=503,
            headers={"retry-after": "1", "content-type": "application/json"},
            body='{"error": "spool.full", "status": 503}',
        )

    page.route("**/v1/batch*", first_503_then_through)
    app = DemoApp(page, demo)
    app.open()
    app.sign_in()
    app.go("Search", "search")
    first = app.flush()
    assert answered == [503]
    assert first["queued"] > 0
    wait_until(lambda: app.stats()["queued"] == 0, timeout_s=10, what="the retry")
    stats = app.settle()

    batches = requests_seen.batches()
    retried = {event["event_id"] for event in batches[0].batch_events()}
    assert retried <= {event["event_id"] for event in batches[1].batch_events()}
    rows = demo.events()
    assert len(rows) == len(requests_seen.batch_event_ids()) == stats["sent"]
    assert len(rows) == len({row["event_id"] for row in rows})
    assert [row["screen_id"] for row in by_name(rows, "screen_view")] == ["login", "home", "search"]
    # referrer_screen: the screen of the view before (paths report)
    assert [row.get("referrer_screen") for row in by_name(rows, "screen_view")] == [
        None,
        "login",
        "home",
    ]


@pytest.mark.parametrize("leave", ["hidden", "closed", "navigated_away"])
def test_the_queue_goes_by_beacon_when_the_page_is_hidden_or_left(
    context: Any, demo: DemoServer, requests_seen: RequestLog, leave: str
) -> None:
    demo.update_key(flush_interval_ms=600_000)  # no timed sends: only leaving the page sends
    app = DemoApp(context.new_page(), demo)
    app.open()
    app.sign_in()
    app.go("New request", "request_create")
    app.fill_step_1()
    queued = app.stats()["queued"]
    assert queued >= 6
    assert requests_seen.batches() == []

    if leave == "hidden":
        app.hide()
    elif leave == "closed":
        app.page.close(run_before_unload=True)
    else:
        app.page.goto("about:blank")
    wait_until(lambda: accepted_events(demo) >= queued, what="the beacon's events")

    rows = demo.events()
    assert len(rows) >= queued  # web-vitals adds its reports to the same beacon
    assert len(rows) == len({row["event_id"] for row in rows})
    assert [row["screen_id"] for row in by_name(rows, "screen_view")] == [
        "login",
        "home",
        "request_create",
    ]
    assert all(request.resource_type == "ping" for request in requests_seen.batches())


def test_a_sample_rate_of_zero_sends_nothing(
    context: Any, demo: DemoServer, requests_seen: RequestLog
) -> None:
    demo.update_key(sample_rate=0.0)
    app = DemoApp(context.new_page(), demo)
    app.open()
    app.sign_in()
    app.go("New request", "request_create")
    app.fill_step_1()
    stats = app.flush()
    app.hide()
    app.page.goto("about:blank")
    time.sleep(1)

    assert stats["queued"] == stats["sent"] == 0
    assert any("/v1/config" in request.url for request in requests_seen.seen)
    assert requests_seen.batches() == []
    assert demo.events() == []


def test_the_kill_switch_stops_sending_and_forgets_the_queue(
    context: Any, demo: DemoServer, requests_seen: RequestLog
) -> None:
    page = context.new_page()
    app = DemoApp(page, demo)
    page.route("**/v1/batch*", lambda route: route.abort())  # the collector is unreachable
    app.open()
    app.sign_in()
    app.go("Search", "search")
    assert app.flush()["queued"] > 0
    assert json.loads(page.evaluate("localStorage.getItem('stumble.q')"))

    demo.update_key(enabled=False)
    page.unroute("**/v1/batch*")
    # Chromium may keep /v1/config for its max-age (5 min); any route turns its cache off, as
    # for a browser that opens the app after the switch.
    page.route("**/v1/config*", lambda route: route.continue_())
    before = len(requests_seen.batches())
    page.reload()
    page.wait_for_function("() => window.stumble && window.stumble.stats")
    app.wait_for_screen("search")
    page.wait_for_function("() => localStorage.getItem('stumble.q') === null")
    app.go("New request", "request_create")
    app.fill_step_1()
    stats = app.flush()
    app.hide()
    page.goto("about:blank")
    time.sleep(1)

    assert stats["queued"] == stats["sent"] == 0
    assert requests_seen.batches()[before:] == []
    assert demo.events() == []


def test_a_page_on_a_cached_config_stops_at_the_first_refusal(
    context: Any, demo: DemoServer, requests_seen: RequestLog
) -> None:
    """Chromium keeps /v1/config for its max-age, so a page reloaded just after the kill switch
    still starts with ``enabled: true``; the batch's 403 must stop it all the same."""
    app = DemoApp(context.new_page(), demo)
    app.open()
    app.sign_in()
    assert app.flush()["sent"] > 0
    demo.update_key(enabled=False)
    configs_before = sum("/v1/config" in request.url for request in requests_seen.seen)
    app.page.reload()
    app.page.wait_for_function("() => window.stumble && window.stumble.stats")
    batches_before = len(requests_seen.batches())
    app.go("Search", "search")
    stopped = app.flush()
    app.go("Reports", "reports")
    app.go("Home", "home")
    after = app.flush()
    saved_queue = app.page.evaluate("localStorage.getItem('stumble.q')")
    app.hide()
    app.page.goto("about:blank")
    time.sleep(1)

    configs = sum("/v1/config" in request.url for request in requests_seen.seen)
    assert configs == configs_before + 1  # asked again, answered from the browser's cache
    assert len(requests_seen.batches()) == batches_before + 1  # refused once, then silence
    assert stopped["queued"] == after["queued"] == 0
    assert after["sent"] == 0
    assert saved_queue is None
    rows = demo.events()
    assert [row["screen_id"] for row in by_name(rows, "screen_view")] == ["login", "home"]
