"""Settings: one typed Struct, read from ``stumble.toml``, then ``STUMBLE_*`` variables.

Every setting is documented by its docstring-comment below; ``docs/configuration.md`` is generated
from this module and a test fails when a setting is undocumented, so the two cannot drift.
Precedence: built-in default < config file < environment variable < command-line flag.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

ENV_PREFIX: Final = "STUMBLE_"
_TEAM: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """All settings of a stumble server. Field comments are the documentation."""

    data_dir: str = "./stumble-data"
    """Directory holding the database, spool, keys and secrets."""
    host: str = "127.0.0.1"
    """Address the HTTP server binds to."""
    port: Annotated[int, Meta(ge=1, le=65535)] = 8710
    """TCP port of the HTTP server."""
    plan: str = ""
    """Path of the tracking plan YAML; empty means the packaged example plan."""
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 1_048_576
    """Largest accepted request body, after gzip decompression (413 beyond)."""
    max_events_per_batch: Annotated[int, Meta(ge=1)] = 500
    """Most events in one batch (413 beyond)."""
    rate_limit_events_per_s: Annotated[float, Meta(ge=0)] = 0.0
    """Per write key sustained events per second; 0 disables the limit (429 beyond)."""
    rate_limit_burst: Annotated[int, Meta(ge=1)] = 20_000
    """Per write key burst allowance in events."""
    body_read_timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    """A request body not received within this many seconds gets 408 (slow clients)."""
    header_timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    """A connection whose request headers are not complete this many seconds after it opened, or
    after the first byte of its next request, is closed (408 if a request had begun)."""
    max_header_bytes: Annotated[int, Meta(ge=1024)] = 16_384
    """Largest request line plus headers of one request (431 beyond, and the connection closes)."""
    max_connections: Annotated[int, Meta(ge=2)] = 1000
    """Open HTTP connections at which new ones get 503 and are closed (uvicorn's
    limit_concurrency); the open-file limit is raised to fit when the system allows."""
    max_event_age_days: Annotated[int, Meta(ge=1)] = 30
    """Events older than this (after clock-skew correction) are rejected as too old."""
    max_future_skew_s: Annotated[int, Meta(ge=0)] = 300
    """Events dated further in the future than this (after correction) are rejected."""
    spool_max_segment_bytes: Annotated[int, Meta(ge=4096)] = 16 * 1024 * 1024
    """A spool segment is sealed for loading at this size."""
    spool_max_segment_age_s: Annotated[float, Meta(gt=0)] = 1.0
    """A non-empty spool segment is sealed after this many seconds."""
    spool_max_unloaded_bytes: Annotated[int, Meta(ge=4096)] = 1024 * 1024 * 1024
    """Spool bytes not yet loaded before ingest answers 503 (backpressure)."""
    spool_fsync: bool = True
    """fsync before every 202; only a benchmark should turn this off."""
    loader_interval_s: Annotated[float, Meta(gt=0)] = 0.5
    """How often the in-process loader looks for sealed segments."""
    rollup_interval_s: Annotated[float, Meta(ge=1)] = 60.0
    """How often the loader rebuilds the daily rollups of the days it loaded into: reports
    over whole days read rollups, so they are about this far behind the raw rows (longer on a
    day of millions of events: rollups take at most a tenth of the loader's time)."""
    duckdb_threads: Annotated[int, Meta(ge=1)] = 2
    """Threads DuckDB may use for queries."""
    duckdb_memory_limit: str = "2GB"
    """DuckDB memory limit (DuckDB syntax, e.g. 2GB)."""
    retention_raw_days: dict[str, Annotated[int, Meta(ge=1)]] = msgspec.field(
        default_factory=lambda: {"prod": 30, "staging": 7, "test": 1, "dev": 1}
    )
    """Days raw events are kept per environment (by server receive time); rollups keep the
    trends for ``retention_rollup_months``. Run by the server hourly and by
    ``stumble retention run``."""
    retention_raw_default_days: Annotated[int, Meta(ge=1)] = 30
    """Days raw events are kept in an environment that ``retention_raw_days`` does not list."""
    retention_rollup_months: Annotated[int, Meta(ge=1)] = 13
    """Calendar months of daily rollups kept before the current one (13: a month can be
    compared with the same month a year before)."""
    retention_quarantine_days: Annotated[int, Meta(ge=1)] = 90
    """Days the quarantine counters (reason codes and counts of rejected or redacted input)
    are kept, by their day."""
    retention_audit_days: Annotated[int, Meta(ge=1)] = 400
    """Days audit records are kept: the log is archived in ``audit/archive/`` once its first
    record is a month old, and an archive whose last record is older than this is deleted."""
    retention_compact_free_share: Annotated[float, Meta(ge=0, le=1)] = 0.3
    """After a retention run, a database file with more than this share free is copied into a
    new, smaller file (the server pauses writes meanwhile); 1 turns it off. Below it, freed
    space is reused by new events but the file does not shrink."""
    audit_digest_interval_s: Annotated[float, Meta(ge=60)] = 3600.0
    """Seconds between audit digest records, which sign the audit log's hash chain (one is also
    written at shutdown); records after the latest digest are not yet covered by a signature."""
    session_key_time_zone: str = ""
    """IANA time zone (``America/Chicago``) whose midnight starts a new session key: sessions
    never span it, so pick one where midnight falls outside working hours. Empty: the server's
    zone. Keys are still destroyed 48 hours after their day began."""
    frustration_repeat_ms: Annotated[int, Meta(ge=100, le=10_000)] = 1_000
    """Frustration report: an action on the same target again within this many ms is a
    repeat (a button that seemed not to answer)."""
    frustration_quick_back_ms: Annotated[int, Meta(ge=500, le=60_000)] = 5_000
    """Frustration report: a screen left for the one before within this many ms of opening it
    is a quick back."""
    frustration_dead_ms: Annotated[int, Meta(ge=500, le=60_000)] = 3_000
    """Frustration report: an action with no screen, operation, error or submit within this
    many ms is a dead action."""
    frustration_text_targets: list[str] = msgspec.field(default_factory=list)
    """Action targets that are text inputs, left out of the frustration report (clicking into
    a field again is typing, not frustration)."""
    raw_access_days: Annotated[int, Meta(ge=1, le=90)] = 7
    """How far back engineers may read raw events and session timelines (even where retention
    keeps rows longer); everyone else reads aggregates only."""
    data_key_file: str = ""
    """Path of the file holding the data keys for encryption at rest (one base64 key per line,
    the first encrypts; mode 0600; outside the data directory). Empty: no encryption, unless the
    keys come from the STUMBLE_DATA_KEY variable instead (never put a key in this file)."""
    retry_after_s: Annotated[int, Meta(ge=1)] = 5
    """Retry-After seconds sent with 503 answers."""
    log_level: str = "INFO"
    """Python logging level for the server."""
    allowed_hosts: list[str] = msgspec.field(default_factory=list)
    """Host names the server answers to (the Host header); empty means loopback names and the
    bind address. Set it to the public name when serving other machines (DNS-rebinding guard)."""

    tls_cert: str = ""
    """PEM certificate file: with ``tls_key``, the server speaks HTTPS itself (and session
    cookies are Secure). Empty: plain HTTP, for loopback or behind a TLS-terminating proxy."""
    tls_key: str = ""
    """PEM private key file for ``tls_cert``."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """CIDRs of reverse proxies (oauth2-proxy, Keycloak, Authelia) whose sign-on headers are
    believed; the headers from any other peer are ignored. Required for ``sso_user_header``."""
    sso_user_header: str = ""
    """Header carrying the signed-in user from a trusted proxy (``X-Forwarded-User``); empty
    turns header sign-on off."""
    sso_groups_header: str = "X-Forwarded-Groups"
    """Header carrying the user's groups (comma-separated) from a trusted proxy."""
    sso_group_roles: dict[str, str] = msgspec.field(default_factory=dict)
    """Group → role (``admin``, ``engineer``, ``analyst``, ``auditor``); a user with several
    groups gets the role that grants most; a user with no mapped group gets nothing."""

    review_environment: str = "prod"
    """Environment whose traffic the alert rules watch (the demo watches ``dev``, where its
    history is)."""
    review_timezone: str = ""
    """IANA time zone of the review loop's calendar (digest day and time, alert days, fix
    verification dates); empty: the server's local zone."""
    digest_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    """Day the server sends the weekly digest of the week before."""
    digest_time: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "09:00"
    """Local time (``review_timezone``) at which the weekly digest is sent, HH:MM."""
    team_emails: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Owner team (as the tracking plan names it) → e-mail addresses that receive its digest,
    alerts and fix verdicts. Teams, never people, own things in the plan; the addresses are
    the team's own (a list or alias)."""
    team_webhooks: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Owner team → webhook URLs that receive a plain JSON body for each notification."""
    team_chat_webhooks: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Owner team → Slack or Mattermost incoming-webhook URLs (``{"text": ...}`` bodies)."""
    smtp_host: str = ""
    """SMTP server for e-mail; empty: no e-mail is sent (webhooks still are)."""
    smtp_port: Annotated[int, Meta(ge=1, le=65535)] = 587
    """SMTP port (587 with STARTTLS, 25 inside a trusted network)."""
    smtp_starttls: bool = True
    """Upgrade the SMTP connection with STARTTLS before sending (refuse to send without it)."""
    smtp_username: str = ""
    """SMTP login; empty: no authentication."""
    smtp_password_file: str = ""
    """File holding the SMTP password (mode 0600); never the password itself in settings."""
    smtp_sender: str = "stumble@localhost"
    """The From address of stumble's mail."""
    smtp_timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    """Seconds to wait for the SMTP server at each step."""
    alert_interval_s: Annotated[float, Meta(ge=10)] = 300.0
    """Seconds between evaluations of the alert rules inside the server."""
    alert_min_sessions: Annotated[int, Meta(ge=1)] = 30
    """Sessions each side of a comparison needs before a rule may fire."""
    alert_alpha: Annotated[float, Meta(gt=0, lt=0.5)] = 0.01
    """Significance level of a change-detection rule (a change must be this unlikely by
    chance, after adjusting for every rule tested at once)."""
    alert_pending_s: Annotated[float, Meta(ge=0)] = 900.0
    """Seconds a rule must keep failing before it fires (Grafana's pending period)."""
    alert_cooldown_s: Annotated[float, Meta(ge=0)] = 43_200.0
    """Seconds after a notification during which the same rule does not notify again."""
    fix_check_time: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "08:00"
    """Local time at which fixes whose verification date has come are verified, HH:MM."""

    def validate(self) -> None:
        """Refuse combinations that each pass their own bounds but cannot work together."""
        self._validate_sign_on()
        self._validate_tls()
        self._validate_review()
        self._validate_session_keys()
        if self.rate_limit_events_per_s > 0 and self.rate_limit_burst < self.max_events_per_batch:
            # A full batch costs more than the bucket can ever hold: it would get 429 forever.
            raise SettingsError(
                f"rate_limit_burst ({self.rate_limit_burst}) must be at least "
                f"max_events_per_batch ({self.max_events_per_batch}) while "
                "rate_limit_events_per_s is above 0"
            )

    def _validate_sign_on(self) -> None:
        if self.sso_user_header and not self.trusted_proxies:
            # Grafana's auth proxy without its spoofing defence: anyone could send the header.
            raise SettingsError(
                "sso_user_header is set but trusted_proxies is empty: header sign-on needs the "
                "addresses of the proxies allowed to send it"
            )
        for cidr in self.trusted_proxies:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise SettingsError("trusted_proxies holds an entry that is not a CIDR") from None
        roles = {"admin", "engineer", "analyst", "auditor"}
        if any(role not in roles for role in self.sso_group_roles.values()):
            raise SettingsError(f"sso_group_roles maps to a role outside {sorted(roles)}")

    def _validate_review(self) -> None:
        if self.review_timezone:
            try:
                zoneinfo.ZoneInfo(self.review_timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise SettingsError("review_timezone is not an IANA time zone") from None
        routes = (self.team_emails, self.team_webhooks, self.team_chat_webhooks)
        for team in itertools.chain.from_iterable(routes):
            if not _TEAM.fullmatch(team):
                raise SettingsError("team names in team_* settings must be plan identifiers")
        for address in itertools.chain.from_iterable(self.team_emails.values()):
            if not _EMAIL.fullmatch(address):
                raise SettingsError("team_emails holds an entry that is not an e-mail address")
        hooks = itertools.chain(self.team_webhooks.values(), self.team_chat_webhooks.values())
        for url in itertools.chain.from_iterable(hooks):
            if not url.startswith(("https://", "http://")):
                raise SettingsError("team webhooks must be http:// or https:// URLs")

    def _validate_session_keys(self) -> None:
        if self.session_key_time_zone:
            try:
                zoneinfo.ZoneInfo(self.session_key_time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise SettingsError(
                    "session_key_time_zone is not an IANA time zone name (e.g. Asia/Almaty)"
                ) from None

    def _validate_tls(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("tls_cert and tls_key go together: set both or neither")


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the settings, fit for one line."""


SETTING_NAMES: Final[tuple[str, ...]] = Settings.__struct_fields__


def load_settings(
    config_path: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """File values over defaults, then ``STUMBLE_<NAME>`` environment variables over those.

    Raises ``SettingsError`` for a malformed file, an unknown or out-of-bounds setting, or
    settings that cannot work together."""
    values: dict[str, Any] = {}
    try:
        if config_path is not None and config_path.exists():
            values.update(msgspec.toml.decode(config_path.read_bytes()))
        env = os.environ if environ is None else environ
        for name in SETTING_NAMES:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = _parse_env_value(raw)
        settings = msgspec.convert(values, Settings, strict=False)
    except msgspec.DecodeError as error:  # ValidationError is a DecodeError
        source = f"{config_path} or {ENV_PREFIX}*" if config_path else f"{ENV_PREFIX}*"
        raise SettingsError(f"invalid settings in {source}: {error}") from None
    except OSError as error:
        raise SettingsError(f"cannot read {config_path}: {error.strerror}") from None
    settings.validate()
    return settings


def _parse_env_value(raw: str) -> object:
    """Environment values are TOML scalars or tables (``{prod = 90}``); fall back to the text."""
    try:
        return msgspec.toml.decode(f"v = {raw}".encode())["v"]
    except msgspec.DecodeError:
        return raw


def render_default_config(settings: Settings) -> str:
    """A commented ``stumble.toml`` with the given values, written on first start."""
    lines = ["# stumble settings. Environment variables STUMBLE_<NAME> override these.", ""]
    docs = setting_docs()
    encoded = msgspec.to_builtins(settings)
    for name in SETTING_NAMES:
        lines.extend(f"# {line.strip()}" for line in docs.get(name, "").splitlines())
        lines.append(f"{name} = {_toml_value(encoded[name])}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    """TOML for the scalar and table types settings use (JSON strings are valid TOML strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return msgspec.json.encode(value).decode()


def setting_docs() -> dict[str, str]:
    """Each setting's documentation: the string literal that follows its field in this module."""
    import ast  # noqa: PLC0415 - only the docs path needs it

    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    docs: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Settings":
            body = node.body
            for current, following in itertools.pairwise(body):
                if (
                    isinstance(current, ast.AnnAssign)
                    and isinstance(current.target, ast.Name)
                    and isinstance(following, ast.Expr)
                    and isinstance(following.value, ast.Constant)
                ):
                    docs[current.target.id] = str(following.value.value)
    return docs
