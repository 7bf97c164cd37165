"""Every knob of the simulation, with the seed's service-desk story as the defaults.

``SimulationParams`` is a frozen msgspec Struct: ``to_json()`` writes it, ``from_json()`` reads
it back with every bound checked, and ``msgspec.json.schema(SimulationParams)`` documents each
field (the descriptions below are that documentation; a test fails when one is missing).

The story (spec, "Example: improving a request form"): the create-request form has three
steps. In ui_version ``1.4.2`` 40% of the sessions that finish step 1 never finish step 2, 70% of
them hit a ``format`` error on ``iin_bin`` and resubmit 2-4 times, each attempt waiting for
server validation, so the median time on step 2 is about 90 s. From
``ui_version_change_day`` on, sessions run ``2.0.0``, the fix (input mask, hint, concrete error
text, client-side checks): about 10% hit the error, step 2 takes about 35 s, fewer drop.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from stumble.events import FieldErrorType, NavigationKind, VitalMetric

Share = Annotated[float, Meta(ge=0.0, le=1.0)]
Weights = dict[str, Annotated[float, Meta(ge=0.0)]]
Milliseconds = Annotated[float, Meta(gt=0.0)]

Z_95: Final = 1.6448536269514722
"""The standard normal 95th percentile: a lognormal's sigma is ``ln(p95 / median) / Z_95``."""

VERSION_BEFORE: Final = "1.4.2"
VERSION_AFTER: Final = "2.0.0"


def described(text: str, *, ge: float | None = None, gt: float | None = None) -> Meta:
    """A field's documentation (shown by ``msgspec.json.schema``) and its lower bound."""
    if ge is not None:
        return Meta(ge=ge, description=text)
    if gt is not None:
        return Meta(gt=gt, description=text)
    return Meta(description=text)


class LogNormal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A positive quantity (milliseconds unless said otherwise) drawn from a lognormal
    distribution given by its median and its 95th percentile."""

    median: Annotated[float, described("The median.", gt=0.0)]
    p95: Annotated[float, described("The 95th percentile; at least the median.", gt=0.0)]

    def __post_init__(self) -> None:
        if self.p95 < self.median:
            raise ValueError("a LogNormal's p95 must be at least its median")

    @property
    def mu(self) -> float:
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        return math.log(self.p95 / self.median) / Z_95


class FieldErrorRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One kind of validation error on one field at one form step."""

    field_id: Annotated[str, described("The field key, never its value.")]
    error_type: Annotated[FieldErrorType, described("The error class (required, format...).")]
    step: Annotated[int, described("The form step the field is on (1-based).", ge=1)]
    session_share: Annotated[
        Share, described("Share of the sessions that enter this step and hit this error.")
    ]
    failed_attempts: Annotated[
        tuple[int, int],
        described("Inclusive range of failed submits the error causes before it is fixed."),
    ] = (1, 1)


class FormVersion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How people get through the 3-step create-request form under one ui_version."""

    drop_off: Annotated[
        dict[int, Share],
        described(
            "Per form step: share of the sessions entering the step that never complete it. "
            "Step 2 is the seed's 40% in 1.4.2."
        ),
    ]
    field_errors: Annotated[
        tuple[FieldErrorRule, ...], described("Validation errors and how often they occur.")
    ]
    fill: Annotated[
        dict[int, LogNormal],
        described("Per form step: time from entering it to the first submit click (ms)."),
    ]
    correction: Annotated[
        LogNormal, described("Time to understand an error and fix the field before resubmitting.")
    ]
    validation_wait: Annotated[
        LogNormal,
        described(
            "Wait for validation after each submit of steps 1-2: a server round trip in 1.4.2 "
            "(2-3 s), client-side checks in 2.0.0."
        ),
    ]
    submit_target: Annotated[
        str,
        described(
            "Target of the final submit button: 1.4.2 says btn_send, renamed btn_submit in "
            "2.0.0 (the plan keeps btn_send as an alias so the trend survives)."
        ),
    ] = "btn_submit"


class RequestFormParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The create_service_request scenario."""

    versions: Annotated[dict[str, FormVersion], described("Form behaviour keyed by ui_version.")]
    error_abandon_lift: Annotated[
        float,
        described(
            "A session that hits a problem at a step (a field error, a failed submit) abandons "
            "it this many times as often as one that does not. The simulator solves for the "
            "clean rate so that the step's overall drop-off still equals drop_off.",
            ge=1.0,
        ),
    ] = 3.0
    list_first_share: Annotated[
        Share, described("Share of sessions that open the request list before the form.")
    ] = 0.5
    abandon_nav: Annotated[
        dict[NavigationKind, Annotated[float, Meta(ge=0.0)]],
        described("How an abandoning person leaves: weights of back / close / cancel."),
    ] = msgspec.field(default_factory=lambda: {"back": 0.45, "close": 0.35, "cancel": 0.2})


class OperationParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A timed operation and the API route behind it."""

    operation: Annotated[str, described("The plan's operation name (operation_* events).")]
    route: Annotated[
        str,
        described(
            "API route template; ':id' is filled with a 4-7 digit number on the wire, which "
            "the privacy guard turns back into ':id'."
        ),
    ]
    server: Annotated[LogNormal, described("Server time (the 'api' vital) in ms.")]
    client: Annotated[
        LogNormal, described("Client-side time around the request (render, parse) in ms.")
    ] = LogNormal(median=60.0, p95=250.0)
    fail_rate: Annotated[Share, described("Share of calls answered with an HTTP 5xx.")] = 0.0
    timeout_rate: Annotated[Share, described("Share of calls that time out.")] = 0.0
    timeout_ms: Annotated[float, described("Client timeout in ms.", gt=0.0)] = 15_000.0


class LoginParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    share: Annotated[Share, described("Share of sessions that start on the login screen.")] = 0.35
    fill: Annotated[LogNormal, described("Time to type credentials (ms).")] = LogNormal(
        7_000, 20_000
    )
    drop_off: Annotated[Share, described("Share of login attempts never completed.")] = 0.04
    field_errors: Annotated[tuple[FieldErrorRule, ...], described("Login validation errors.")] = (
        FieldErrorRule("password", "server", 1, 0.10, (1, 2)),
        FieldErrorRule("username", "required", 1, 0.03),
    )
    correction: Annotated[LogNormal, described("Time to retype after an error.")] = LogNormal(
        5_000, 15_000
    )


class SearchParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    think: Annotated[LogNormal, described("Time to type a query or change filters.")] = LogNormal(
        6_000, 20_000
    )
    queries: Annotated[tuple[int, int], described("Inclusive range of queries per visit.")] = (
        1,
        3,
    )
    filter_share: Annotated[Share, described("Share of queries preceded by a filter.")] = 0.5
    open_result_share: Annotated[Share, described("Share of visits that open a result.")] = 0.65
    scan: Annotated[LogNormal, described("Time to scan results before opening one.")] = LogNormal(
        4_000, 15_000
    )


class ApprovalParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    open_share: Annotated[Share, described("Share of queue visits that open an item.")] = 0.9
    pick: Annotated[LogNormal, described("Time to pick an item in the queue.")] = LogNormal(
        5_000, 20_000
    )
    decide_share: Annotated[Share, described("Share of opened items decided.")] = 0.85
    read: Annotated[LogNormal, described("Time reading the item before deciding.")] = LogNormal(
        20_000, 90_000
    )
    reason_required_share: Annotated[
        Share, described("Share of decisions first submitted without the required reason.")
    ] = 0.12
    correction: Annotated[LogNormal, described("Time to add the missing reason.")] = LogNormal(
        6_000, 20_000
    )


class ReportParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    export_share: Annotated[Share, described("Share of report visits that start an export.")] = 0.8
    configure: Annotated[LogNormal, described("Time to set the report's parameters.")] = LogNormal(
        10_000, 40_000
    )
    correction: Annotated[LogNormal, described("Time to fix a rejected period.")] = LogNormal(
        6_000, 20_000
    )
    period_error_share: Annotated[
        Share, described("Share of exports first rejected with a period_to range error.")
    ] = 0.08
    cancel_share: Annotated[Share, described("Share of exports cancelled while waiting.")] = 0.05
    formats: Annotated[Weights, described("Weights of xlsx / pdf / csv.")] = msgspec.field(
        default_factory=lambda: {"xlsx": 0.6, "pdf": 0.3, "csv": 0.1}
    )


class JsErrorSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fingerprint: Annotated[
        str, described("Stable fingerprint: 8-16 lowercase hex without long digit runs.")
    ]
    error_type: Annotated[str, described("Exception class name.")]
    module: Annotated[str, described("Front-end module the stack points to.")]
    weight: Annotated[float, described("Relative frequency among JS errors.", ge=0.0)]
    ui_versions: Annotated[
        tuple[str, ...], described("Only these ui_versions raise it; empty means all.")
    ] = ()


class JsErrorParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    session_rate: Annotated[Share, described("Share of sessions with a JS exception.")] = 0.04
    errors: Annotated[tuple[JsErrorSpec, ...], described("The distinct JS errors.")] = (
        JsErrorSpec("9f3ac2e1b7d40a5c", "TypeError", "request_form", 0.5),
        JsErrorSpec("4be1d0a9c3f2", "ChunkLoadError", "app_shell", 0.2),
        JsErrorSpec("c7d2e8f1a0b3", "RangeError", "report_viewer", 0.15),
        JsErrorSpec("a1b2c3d4e5f6a7b8", "TypeError", "iin_mask", 0.3, (VERSION_AFTER,)),
    )


class VitalsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    page_load: Annotated[
        dict[VitalMetric, LogNormal],
        described("Web Vitals of the first page load on desktop (ms; CLS unitless)."),
    ] = msgspec.field(
        default_factory=lambda: {
            "TTFB": LogNormal(350, 1_200),
            "FCP": LogNormal(1_100, 3_000),
            "LCP": LogNormal(1_800, 5_000),
            "CLS": LogNormal(0.04, 0.3),
        }
    )
    inp: Annotated[LogNormal, described("Interaction to Next Paint, once per session.")] = (
        LogNormal(120, 450)
    )
    long_task: Annotated[LogNormal, described("Duration of a long task (ms).")] = LogNormal(
        120, 400
    )
    long_task_share: Annotated[Share, described("Share of sessions reporting a long task.")] = 0.1
    device_factor: Annotated[
        dict[str, Annotated[float, Meta(gt=0.0)]],
        described("Multiplier of timing vitals by device_type (CLS is not scaled)."),
    ] = msgspec.field(default_factory=lambda: {"desktop": 1.0, "tablet": 1.3, "mobile": 1.7})


class ContextParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Weights of each non-identifying segment; values must be allowed by the plan."""

    role: Weights = msgspec.field(
        default_factory=lambda: {
            "operator": 0.45,
            "accountant": 0.15,
            "manager": 0.15,
            "approver": 0.2,
            "admin": 0.05,
        }
    )
    device_type: Weights = msgspec.field(
        default_factory=lambda: {"desktop": 0.82, "tablet": 0.06, "mobile": 0.12}
    )
    browser: Weights = msgspec.field(
        default_factory=lambda: {
            "chrome": 0.5,
            "edge": 0.2,
            "yandex": 0.15,
            "firefox": 0.1,
            "safari": 0.03,
            "other": 0.02,
        }
    )
    division: Weights = msgspec.field(
        default_factory=lambda: {
            "hq": 0.3,
            "branch_north": 0.175,
            "branch_south": 0.175,
            "branch_east": 0.175,
            "branch_west": 0.175,
        }
    )
    region: Weights = msgspec.field(
        default_factory=lambda: {
            "almaty": 0.35,
            "astana": 0.25,
            "shymkent": 0.15,
            "karaganda": 0.15,
            "aktobe": 0.1,
        }
    )


def _default_form_versions() -> dict[str, FormVersion]:
    step_1_errors = (
        FieldErrorRule("request_type", "required", 1, 0.06),
        FieldErrorRule("category", "required", 1, 0.04),
    )
    step_3_errors = (FieldErrorRule("due_date", "range", 3, 0.03),)
    before = FormVersion(
        drop_off={1: 0.10, 2: 0.40, 3: 0.05},
        field_errors=(
            *step_1_errors,
            FieldErrorRule("iin_bin", "format", 2, 0.70, (2, 4)),
            FieldErrorRule("contract_number", "format", 2, 0.15, (1, 2)),
            *step_3_errors,
        ),
        fill={
            1: LogNormal(25_000, 70_000),
            2: LogNormal(40_000, 100_000),
            3: LogNormal(12_000, 40_000),
        },
        correction=LogNormal(18_000, 45_000),
        validation_wait=LogNormal(2_500, 4_000),
        submit_target="btn_send",
    )
    after = FormVersion(
        drop_off={1: 0.10, 2: 0.15, 3: 0.05},
        field_errors=(
            *step_1_errors,
            FieldErrorRule("iin_bin", "format", 2, 0.10, (1, 2)),
            FieldErrorRule("contract_number", "format", 2, 0.08),
            *step_3_errors,
        ),
        fill={
            1: LogNormal(25_000, 70_000),
            2: LogNormal(33_000, 80_000),
            3: LogNormal(12_000, 40_000),
        },
        correction=LogNormal(8_000, 25_000),
        validation_wait=LogNormal(250, 600),
    )
    return {VERSION_BEFORE: before, VERSION_AFTER: after}


def _default_operations() -> dict[str, OperationParams]:
    return {
        # Login failures are modelled as field errors (wrong password), not as 5xx.
        "login": OperationParams("login", "/api/auth/login", LogNormal(350, 1_200)),
        "search": OperationParams(
            "search", "/api/search", LogNormal(700, 2_600), fail_rate=0.01, timeout_rate=0.005,
            timeout_ms=10_000,
        ),
        "request_submit": OperationParams(
            "request_submit", "/api/requests", LogNormal(1_200, 4_000), fail_rate=0.03,
            timeout_rate=0.01, timeout_ms=15_000,
        ),
        "request_list": OperationParams("list_load", "/api/requests/mine", LogNormal(400, 1_500)),
        "approval_list": OperationParams(
            "list_load", "/api/approvals", LogNormal(2_200, 7_000), fail_rate=0.01
        ),
        "approval_decision": OperationParams(
            "approval_decision", "/api/approvals/:id/decision", LogNormal(600, 2_000),
            fail_rate=0.01,
        ),
        "report_export": OperationParams(
            "report_export", "/api/reports/export", LogNormal(6_000, 18_000), fail_rate=0.02,
            timeout_rate=0.03, timeout_ms=30_000,
        ),
    }  # fmt: skip


Scenario = Literal["create_service_request", "search", "approval", "report_export"]


class SimulationParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything that shapes the simulated traffic. The environment is not here on purpose:
    it is not an event field; it comes from the write key the traffic is sent with."""

    sessions: Annotated[int, described("Number of sessions to generate.", ge=1)] = 20_000
    days: Annotated[int, described("Number of calendar days the sessions span.", ge=1)] = 14
    start_date: Annotated[
        dt.date | None,
        described(
            "First simulated day (local date). None: the `days` days ending yesterday, so the "
            "traffic stays within a collector's maximum event age."
        ),
    ] = None
    seed: Annotated[int, described("Random seed: same seed and start date, same events.")] = 0
    timezone: Annotated[str, described("IANA zone of the users (the events' tz).")] = "Asia/Almaty"
    working_hours: Annotated[
        tuple[int, int], described("Local hours [start, end) sessions begin in.")
    ] = (9, 18)
    weekend_weight: Annotated[
        float, described("Traffic on a Saturday or Sunday relative to a weekday.", ge=0.0)
    ] = 0.1
    schema_version: Annotated[
        Annotated[int, Meta(ge=1)] | None,
        described("Event schema_version; None uses the plan's."),
    ] = None
    ui_version_before: Annotated[str, described("ui_version before the change day.")] = (
        VERSION_BEFORE
    )
    ui_version_after: Annotated[str, described("ui_version from the change day on.")] = (
        VERSION_AFTER
    )
    ui_version_change_day: Annotated[
        int | None,
        described("Day index (0-based) from which sessions run ui_version_after; None: never."),
    ] = 7
    aa_flag: Annotated[
        str | None,
        described(
            "A/A mode: this feature flag is set on a random half of the sessions and changes "
            "nothing, so every comparison between the halves must be 'no significant change'."
        ),
    ] = None
    regression_at: Annotated[
        dt.datetime | None,
        described(
            "A regression at a known moment (with its UTC offset): sessions that start at or "
            "after it run `regression_operations` in place of `operations`; None: never."
        ),
    ] = None
    regression_operations: Annotated[
        dict[str, OperationParams],
        described(
            "Operations (keyed as in `operations`) that behave differently from `regression_at` "
            "on: slower servers, more failures."
        ),
    ] = msgspec.field(default_factory=dict)
    scenario_weights: Annotated[
        dict[Scenario, Annotated[float, Meta(ge=0.0)]],
        described("Relative frequency of each session's main scenario."),
    ] = msgspec.field(
        default_factory=lambda: {
            "create_service_request": 0.4,
            "search": 0.25,
            "approval": 0.2,
            "report_export": 0.15,
        }
    )
    context: Annotated[ContextParams, described("Segment distributions.")] = ContextParams()
    request_form: Annotated[RequestFormParams, described("The create-request form.")] = (
        msgspec.field(default_factory=lambda: RequestFormParams(versions=_default_form_versions()))
    )
    login: Annotated[LoginParams, described("The login scenario.")] = LoginParams()
    search: Annotated[SearchParams, described("The search scenario.")] = SearchParams()
    approval: Annotated[ApprovalParams, described("The approval scenario.")] = ApprovalParams()
    report: Annotated[ReportParams, described("The report-export scenario.")] = ReportParams()
    operations: Annotated[
        dict[str, OperationParams],
        described("Timed operations by name, each with its API route and failure rates."),
    ] = msgspec.field(default_factory=_default_operations)
    js_errors: Annotated[JsErrorParams, described("Front-end exceptions.")] = JsErrorParams()
    vitals: Annotated[VitalsParams, described("Web Vitals.")] = VitalsParams()
    pause: Annotated[
        LogNormal, described("Time on the home screen before the main scenario starts (ms).")
    ] = LogNormal(4_000, 15_000)
    send_delay: Annotated[
        LogNormal, described("Delay from a session's last event to its batch's sent_at (ms).")
    ] = LogNormal(400, 2_500)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> SimulationParams:
        """Decode and check every bound (a Struct built in code is only checked on decode)."""
        return msgspec.json.decode(data, type=cls)

    def checked(self) -> SimulationParams:
        """The same params after a JSON round trip, which enforces every declared bound."""
        params = SimulationParams.from_json(self.to_json())
        params.check_consistency()
        return params

    def ui_versions(self) -> tuple[str, ...]:
        if self.ui_version_change_day is None:
            return (self.ui_version_before,)
        return (self.ui_version_before, self.ui_version_after)

    def check_consistency(self) -> None:
        """Raise ``ValueError`` for combinations the bounds alone cannot catch."""
        low_hour, high_hour = self.working_hours
        if not 0 <= low_hour < high_hour <= 24:
            raise ValueError("working_hours must satisfy 0 <= start < end <= 24")
        for version in self.ui_versions():
            if version not in self.request_form.versions:
                raise ValueError(f"request_form.versions has no entry for ui_version {version}")
        unknown = sorted(set(self.regression_operations) - set(self.operations))
        if unknown:
            raise ValueError(f"regression_operations names operations not in operations: {unknown}")
        if self.regression_operations and self.regression_at is None:
            raise ValueError("regression_operations needs regression_at")
        if self.regression_at is not None and self.regression_at.tzinfo is None:
            raise ValueError("regression_at needs a UTC offset")
        if not any(self.scenario_weights.values()):
            raise ValueError("scenario_weights must have a positive weight")
