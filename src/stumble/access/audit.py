"""The audit log: who did what, when, and with what outcome — tamper-evident and fail-closed.

Format. ``<data_dir>/audit/audit.log`` holds one JSON record per line, appended and never
rewritten. Each record carries ``seq`` (its 1-based line number), ``prev_sha256`` (the
``sha256`` of the record before it; the first record chains to ``GENESIS``) and ``sha256`` (the
SHA-256 of its own canonical JSON without that field). A *digest* record (action
``audit.digest``) opens every new log, is written by ``maybe_write_digest`` once an interval
has passed, and by ``close`` at shutdown. Its ``seal`` is AWS CloudTrail's digest model: an
HMAC-SHA256, under the 32-byte key ``<data_dir>/secrets/audit.key``, of the chain head (the
``sha256`` of the record before it), the record count and the previous digest's signature.
The latest digest line is also kept in ``audit.head`` beside the log, so cutting whole
records off the end is noticed.

Privacy. Who (``Actor``) comes from authentication, never from a request; what is an
``AuditAction`` constant; the detail (``AuditDetail``) holds identifiers and counts only, and
each value is refused with ``ValueError`` unless it is an identifier that no personal-data
detector hits, or a count below a billion. So a record cannot carry personal data by mistake.

Fail closed (HashiCorp Vault's rule). ``AuditLog.record`` returns only once its line is
fsynced; when it cannot be written it raises ``AuditUnavailableError`` and the caller refuses
the audited action (503). A failed append is cut back, so nothing is half-written (should the
cut itself fail, the log errs towards naming an action that was then refused); a line torn
by a crash is cut the next time the log is opened, the way a write-ahead log recovers, and an
``audit.tail_cut`` record says how many bytes went. Threads share one lock; processes (the
server and a CLI command) take ``flock`` on the log and pick up each other's records first.

What ``verify`` detects (it names the first broken line):

- a record edited in place, any byte: ``edited`` (``malformed`` when the line is no longer a
  record at all);
- a record deleted, moved or inserted: ``deleted_or_reordered`` at the first line whose
  ``seq`` or ``prev_sha256`` does not fit;
- records forged or edited with the whole hash chain recomputed: ``bad_digest`` at the first
  digest after them, since the chain head it signed changed and the signature needs the key;
- a line cut part-way (a crash mid-write, or a cut file): ``truncated`` at that line;
- whole records cut off the end, back past a digest: ``truncated`` at the first missing line,
  as long as ``audit.head`` is there (it names the latest digest's line);
- a signature that does not match (altered, or another key): ``bad_digest``.

What it cannot detect:

- records after the latest digest that are removed at a record boundary, or changed with the
  chain recomputed: no signature covers them yet. While the server runs that window is at
  most one digest interval; ``close`` signs the end at shutdown, so after a clean stop there is
  none. After a crash the records since the last digest stay unsigned until the next digest;
  ``VerifyResult.unsigned`` says how many there are;
- cutting the log back to an earlier digest *and* deleting ``audit.head`` or replacing it with
  an older copy: the head is the only record of how long the log was (a copy of it kept
  elsewhere would catch this). A server that has the log open notes any shrinking in an
  ``audit.log_shrank`` record, and one that finds the log gone but its head file still there
  refuses to start a new chain;
- anything done by someone who can read ``secrets/audit.key``: they can sign a forged chain.
  The key protects against whoever can change the log but not read the secrets (a copied log,
  a backup, an account with access to ``audit/`` only).

Encryption at rest. With data keys (``stumble.encryption``) each line is one AES-GCM frame in
base64, under the current key: still one line per record, appended, fsynced and cut the same
way. The hashes and signatures cover the plaintext record, so re-encrypting the log under a
new key (``rekey_log``) leaves every digest valid, and a line changed in any byte no longer
authenticates (``edited``). ``audit.head`` holds the digest's line as stored. Lines written
before encryption was turned on stay readable as they are, until a rotation encrypts them.

Errors: ``AuditError`` is the root; ``AuditUnavailableError`` means "the record was not
written" (refuse the action). ``ValueError`` from ``Actor`` or ``AuditDetail`` means the caller
tried to log something that is not an identifier or count — a bug to fix, not a 503.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

import msgspec
from msgspec.structs import force_setattr

from stumble.encryption import (
    AUDIT,
    DamagedFrameError,
    DataKeyError,
    DataKeyRing,
    FrameOpener,
    FrameSealer,
    is_encrypted_line,
    open_line,
    seal_line,
)
from stumble.privacy.detectors import Detector, detect

GENESIS: Final = "0" * 64
"""What the first record's ``prev_sha256`` holds: there is no record before it."""
DIGEST_INTERVAL_S: Final = 3600.0
KEY_BYTES: Final = 32
COUNT_LIMIT: Final = 1_000_000_000
"""Counts stay below this: the detectors treat a run of nine digits as personal data."""
IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9_.:/-]{1,128}$"
ACTOR_NAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_NAMES: Final = 32
"""Most entries in a tuple of names (filters, settings) in one detail."""
_IDENTIFIER_RE: Final = re.compile(IDENTIFIER_PATTERN)
_ACTOR_NAME_RE: Final = re.compile(ACTOR_NAME_PATTERN)
_SIGNATURE_CONTEXT: Final = "stumble-audit-digest-v1"
_READ_BLOCK: Final = 65_536
_T = TypeVar("_T")


class AuditError(Exception):
    """Root of the audit log's errors."""


class AuditUnavailableError(AuditError):
    """The record was not written (and nothing of it was left in the log): refuse the audited
    action, e.g. with 503. The message names the file, never a record's values."""


class AuditAction(enum.StrEnum):
    """What happened: our own constants, the only actions a record can name."""

    SIGNIN_SUCCESS = "signin.success"
    SIGNIN_FAILURE = "signin.failure"
    TOKEN_CREATE = "token.create"  # noqa: S105 - an action name, not a credential
    TOKEN_REVOKE = "token.revoke"  # noqa: S105 - an action name, not a credential
    WRITE_KEY_CREATE = "write_key.create"
    WRITE_KEY_REVOKE = "write_key.revoke"
    WRITE_KEY_UPDATE = "write_key.update"
    SETTINGS_CHANGE = "settings.change"
    RAW_READ = "raw.read"
    EXPORT = "export"
    RETENTION_RUN = "retention.run"
    SESSION_KEY_DESTROY = "session_key.destroy"
    DIGEST_SEND = "digest.send"
    ALERT_NOTIFY = "alert.notify"
    """An alert changed state (firing, resolved) and its team was notified."""
    ALERT_SILENCE = "alert.silence"
    FIX_CREATE = "fix.create"
    FIX_VERIFY = "fix.verify"
    """A fix's verification ran on its date; the detail names the fix and the verdict."""
    AUDIT_READ = "audit.read"
    AUDIT_DIGEST = "audit.digest"
    """Written by the log itself: a digest record signing the chain head."""
    AUDIT_TAIL_CUT = "audit.tail_cut"
    """Written by the log itself: a torn last line was cut when the log was opened."""
    AUDIT_LOG_SHRANK = "audit.log_shrank"
    """Written by the log itself: the file got shorter while this process had it open, which
    only something other than stumble does (the detail says by how many bytes)."""


LOG_OWN_ACTIONS: Final = frozenset(
    {AuditAction.AUDIT_DIGEST, AuditAction.AUDIT_TAIL_CUT, AuditAction.AUDIT_LOG_SHRANK}
)
"""Actions only the log writes; ``AuditLog.record`` refuses them."""


class Outcome(enum.StrEnum):
    OK = "ok"
    DENIED = "denied"
    ERROR = "error"


class ActorKind(enum.StrEnum):
    TOKEN = "token"  # noqa: S105 - a kind of actor, not a credential
    SSO = "sso"
    CLI = "cli"
    SYSTEM = "system"


_NAMED_KINDS: Final = frozenset({ActorKind.TOKEN, ActorKind.SSO})


class BreakReason(enum.StrEnum):
    """Why ``verify`` stopped at a line."""

    EDITED = "edited"
    DELETED_OR_REORDERED = "deleted_or_reordered"
    TRUNCATED = "truncated"
    BAD_DIGEST = "bad_digest"
    MALFORMED = "malformed"


def check_identifier(value: object, what: str, pattern: re.Pattern[str] = _IDENTIFIER_RE) -> None:
    """Refuse (``ValueError``) anything but an identifier no personal-data detector hits.

    The person-name detector is left out: it is tuned for open text and hits about one random
    10-letter key id in 1500, while the values here are route templates, ids and setting
    names our code chooses. The message never repeats the value."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise ValueError(f"{what} must be an identifier matching {pattern.pattern}")
    found = detect(value)
    if found is not None and found is not Detector.PERSON_NAME:
        raise ValueError(f"{what} looks like personal data ({found}); it is not logged")


def check_count(value: object, what: str) -> None:
    """Refuse (``ValueError``) anything but an int from 0 to ``COUNT_LIMIT`` (exclusive)."""
    if type(value) is not int or not 0 <= value < COUNT_LIMIT:
        raise ValueError(f"{what} must be a whole number from 0 below {COUNT_LIMIT}")


class Actor(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """Who acted, as authentication established it: never a value a request submitted."""

    kind: ActorKind
    name: str = ""
    """The token name or SSO login; empty for ``cli`` and ``system``."""

    def __post_init__(self) -> None:
        kind = ActorKind(self.kind)
        if kind in _NAMED_KINDS:
            check_identifier(self.name, f"{kind} actor name", _ACTOR_NAME_RE)
        elif self.name:
            raise ValueError(f"a {kind} actor has no name")

    @classmethod
    def token(cls, name: str) -> Actor:
        return cls(ActorKind.TOKEN, name)

    @classmethod
    def sso(cls, login: str) -> Actor:
        return cls(ActorKind.SSO, login)

    @classmethod
    def cli(cls) -> Actor:
        return cls(ActorKind.CLI)

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorKind.SYSTEM)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else str(self.kind)


class AuditDetail(
    msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True, kw_only=True
):
    """A small typed detail: identifiers and counts only (checked on construction and decode)."""

    route: str | None = None
    """The route template served (``/api/v1/raw/:kind``), never the path as requested."""
    target: str | None = None
    """What was acted on: a write key id, a token name, a daily key's date…"""
    environment: str | None = None
    filters: tuple[str, ...] = ()
    """Names of the filters a read used (``env``, ``from``), never their values."""
    settings: tuple[str, ...] = ()
    """Names of the settings changed, never their values."""
    reason: str | None = None
    """Our reason code for a denied or failed action (``token_revoked``)."""
    rows: int | None = None
    size_bytes: int | None = None

    def __post_init__(self) -> None:
        for what in ("route", "target", "environment", "reason"):
            value = getattr(self, what)
            if value is not None:
                check_identifier(value, f"detail {what}")
        # frozen, so nothing unchecked can be set later; a list given becomes a tuple, so the
        # record encodes as it will decode
        force_setattr(self, "filters", _checked_names(self.filters, "detail filters"))
        force_setattr(self, "settings", _checked_names(self.settings, "detail settings"))
        for what in ("rows", "size_bytes"):
            value = getattr(self, what)
            if value is not None:
                check_count(value, f"detail {what}")


def _checked_names(names: object, what: str) -> tuple[str, ...]:
    if not isinstance(names, tuple | list) or len(names) > MAX_NAMES:
        raise ValueError(f"{what} must be a tuple of at most {MAX_NAMES} identifiers")
    for name in names:
        check_identifier(name, what)
    return tuple(names)


class Seal(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a digest signs, and the signature."""

    head: str
    """The ``sha256`` of the record before the digest: the chain head."""
    count: int
    """How many records (digests included) come before the digest."""
    previous_signature: str
    """The previous digest's signature; empty for a log's first digest."""
    signature: str
    """HMAC-SHA256 (hex) of the time, head, count and previous signature."""


class AuditRecord(
    msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True, kw_only=True
):
    """One line of the log. Field order is the canonical JSON order the hashes cover."""

    seq: int
    at_ms: int
    at: str
    """``at_ms`` as ISO 8601 UTC, for people and ``grep``."""
    actor: Actor
    action: AuditAction
    outcome: Outcome
    detail: AuditDetail | None = None
    seal: Seal | None = None
    """Present exactly on ``audit.digest`` records."""
    prev_sha256: str
    sha256: str = ""

    def __post_init__(self) -> None:
        if (self.seal is not None) != (self.action == AuditAction.AUDIT_DIGEST):
            raise ValueError("a seal belongs on audit.digest records and only there")


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(AuditRecord)


def _record_sha256(record: AuditRecord) -> str:
    return hashlib.sha256(_encoder.encode(msgspec.structs.replace(record, sha256=""))).hexdigest()


def _with_sha256(record: AuditRecord) -> AuditRecord:
    return msgspec.structs.replace(record, sha256=_record_sha256(record))


def _sign(key: bytes, at_ms: int, head: str, count: int, previous_signature: str) -> str:
    message = f"{_SIGNATURE_CONTEXT}\n{at_ms}\n{head}\n{count}\n{previous_signature}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def iso_utc(at_ms: int) -> str:
    """``2026-12-01T10:00:00.123Z`` (integer arithmetic: no float rounding of milliseconds)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _LineCodec:
    """Stored lines <-> canonical record JSON: a frame under the data keys, or as is."""

    def __init__(self, keys: DataKeyRing | None) -> None:
        self.keys = keys
        self._sealer = None if keys is None else FrameSealer(keys, AUDIT)
        self._opener = None if keys is None else FrameOpener(keys, AUDIT)

    def store(self, plaintext: bytes) -> bytes:
        return plaintext if self._sealer is None else seal_line(self._sealer, plaintext)

    def read(self, stored: bytes) -> bytes:
        """The record JSON of a stored line; ``DamagedFrameError`` for an encrypted line that
        does not authenticate, ``DataKeyError`` for one whose key is not configured."""
        if not is_encrypted_line(stored):
            return stored
        if self._opener is None:
            raise DataKeyError("the audit log is encrypted: set data_key_file or STUMBLE_DATA_KEY")
        return open_line(self._opener, stored)


# --- files: paths, the key, private directories -------------------------------------------


@dataclass(frozen=True)
class AuditPaths:
    log: Path
    head: Path
    key: Path


def audit_paths(data_dir: Path) -> AuditPaths:
    log = data_dir / "audit" / "audit.log"
    return AuditPaths(log=log, head=head_path_for(log), key=data_dir / "secrets" / "audit.key")


def head_path_for(log_path: Path) -> Path:
    return log_path.with_suffix(".head")


def _make_private_dirs(directory: Path) -> None:
    """Create missing directories 0700 each (``mkdir(parents=True)`` ignores the mode for the
    parents it makes)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key(path: Path) -> bytes:
    """The audit key; ``FileNotFoundError`` when there is none, ``AuditError`` when damaged."""
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise AuditError(f"the audit key {path} is not {KEY_BYTES} bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The audit key, made (random, 0600, fsynced) on first use. A damaged key is never
    replaced: that would make every digest signed so far fail to verify."""
    try:
        return read_key(path)
    except FileNotFoundError:
        pass
    _make_private_dirs(path.parent)
    key = os.urandom(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # another process made it first
        return read_key(path)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)
    return key


def _write_head(path: Path, line: bytes) -> None:
    """Replace the head file atomically with the latest digest line."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)
    _fsync_dir(path.parent)


# --- archived logs -------------------------------------------------------------------------

ARCHIVE_DIR: Final = "archive"
"""Where rotated logs go, beside the live one: ``audit-<first>-<last>.log`` (UTC times of
its first record and its closing digest) with its own ``.head``. Each one verifies alone
(``verify(path)``); the live log's first digest carries the archived log's last digest
signature as its ``previous_signature``, which anchors the new chain to the old one."""
_STAMP: Final = "%Y%m%dT%H%M%SZ"
_ARCHIVE_NAME: Final = re.compile(r"audit-(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)\.log")


@dataclass(frozen=True)
class ArchivedLog:
    path: Path
    first_at_ms: int
    last_at_ms: int


@dataclass(frozen=True)
class ArchiveDeletion:
    files: int
    records: int


def archived_logs(log_path: Path) -> list[ArchivedLog]:
    """The archived logs beside ``log_path``, oldest first."""
    directory = log_path.parent / ARCHIVE_DIR
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.iterdir()):
        match = _ARCHIVE_NAME.fullmatch(path.name)
        if match:
            found.append(ArchivedLog(path, _stamp_ms(match[1]), _stamp_ms(match[2])))
    return found


def _archive_name(first_at_ms: int, last_at_ms: int) -> str:
    def stamp(at_ms: int) -> str:
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at_ms)).strftime(_STAMP)

    return f"audit-{stamp(first_at_ms)}-{stamp(last_at_ms)}.log"


def _stamp_ms(stamp: str) -> int:
    moment = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000


def _link_once(source: Path, target: Path) -> None:
    """Hard-link the log into the archive; already done (a rotation that stopped after it)
    is fine, another file under that name is not."""
    try:
        os.link(source, target)
    except FileExistsError:
        if not source.samefile(target):
            raise
    _fsync_dir(target.parent)


def _first_record(fd: int, codec: _LineCodec) -> AuditRecord | None:
    line = os.pread(fd, _READ_BLOCK, 0).split(b"\n", 1)[0]
    if not line:
        return None
    try:
        return _decoder.decode(codec.read(line))
    except (msgspec.DecodeError, DamagedFrameError, DataKeyError):
        return None  # verify names it; a damaged first line is no reason to rotate


# --- reading the end of a log -------------------------------------------------------------


@dataclass(frozen=True)
class _ChainHead:
    """Where the log ends: what the next record chains to, and the latest digest."""

    end: int
    """File size after the last complete line."""
    count: int
    sha256: str
    digest_seq: int
    digest_signature: str
    digest_at_ms: int

    def after(self, record: AuditRecord, line_bytes: int) -> _ChainHead:
        sealed = record.seal is not None
        return _ChainHead(
            end=self.end + line_bytes,
            count=record.seq,
            sha256=record.sha256,
            digest_seq=record.seq if sealed else self.digest_seq,
            digest_signature=record.seal.signature if record.seal else self.digest_signature,
            digest_at_ms=record.at_ms if sealed else self.digest_at_ms,
        )

    @property
    def unsigned(self) -> int:
        return self.count - self.digest_seq


def _last_newline(fd: int, size: int) -> int:
    """Offset of the last ``\\n`` before ``size``, or -1."""
    position = size
    while position > 0:
        start = max(0, position - _READ_BLOCK)
        found = os.pread(fd, position - start, start).rfind(b"\n")
        if found >= 0:
            return start + found
        position = start
    return -1


def _lines_backwards(fd: int, end: int) -> Iterator[bytes]:
    """The complete lines of ``[0, end)`` (``end`` just after a newline), last first."""
    position = end - 1  # the final newline
    partial = b""
    while position > 0:
        start = max(0, position - _READ_BLOCK)
        lines = (os.pread(fd, position - start, start) + partial).split(b"\n")
        partial = lines[0]
        yield from reversed(lines[1:])
        position = start
    if partial:
        yield partial


def _write_all(fd: int, line: bytes) -> None:
    # One write() for the whole line: a crash tears at most this line, never interleaves it.
    written = os.write(fd, line)
    if written != len(line):
        raise OSError(errno.EIO, f"short write, {written} of {len(line)} bytes")


def _cut_torn_tail(fd: int, size: int) -> tuple[int, int]:
    """Cut bytes after the last newline (a write torn by a crash); returns (end, bytes cut)."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size, 0
    end = _last_newline(fd, size) + 1
    os.ftruncate(fd, end)
    os.fsync(fd)
    return end, size - end


def _read_chain_head(fd: int, end: int, codec: _LineCodec) -> _ChainHead:
    last: AuditRecord | None = None
    for line in _lines_backwards(fd, end):
        try:
            record = _decoder.decode(codec.read(line))
        except DataKeyError as error:
            raise AuditUnavailableError(f"the audit log cannot be read: {error}") from None
        except (msgspec.DecodeError, DamagedFrameError):
            raise AuditUnavailableError(
                "the audit log's last records cannot be read, so new ones cannot chain to them; "
                "run `stumble audit verify`, and move the damaged log aside to start a new one"
            ) from None
        if last is None:
            last = record
        if record.seal is not None:
            return _ChainHead(
                end, last.seq, last.sha256, record.seq, record.seal.signature, record.at_ms
            )
    if last is None:
        return _ChainHead(end, 0, GENESIS, 0, "", 0)
    return _ChainHead(end, last.seq, last.sha256, 0, "", 0)


# --- the writer ---------------------------------------------------------------------------


class AuditLog:
    """Appends records to one audit log; safe to share between threads of one process.

    Constructing it does no I/O; the file is opened (and a torn tail cut) by ``open`` or the
    first record. Every failure to write is ``AuditUnavailableError``.
    """

    def __init__(
        self,
        path: Path,
        key_path: Path,
        *,
        digest_interval_s: float = DIGEST_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        data_keys: DataKeyRing | None = None,
    ) -> None:
        """``data_keys`` encrypts every line written (and reads encrypted lines)."""
        self.path = path
        self.head_path = head_path_for(path)
        self.key_path = key_path
        self.digest_interval_ms = round(digest_interval_s * 1000)
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._head: _ChainHead | None = None
        self._key: bytes | None = None
        self._codec = _LineCodec(data_keys)
        self._last_line = b""
        """The latest line appended, as stored (what the head file copies)."""

    @classmethod
    def in_data_dir(
        cls,
        data_dir: Path,
        *,
        digest_interval_s: float = DIGEST_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        data_keys: DataKeyRing | None = None,
    ) -> AuditLog:
        paths = audit_paths(data_dir)
        return cls(
            paths.log,
            paths.key,
            digest_interval_s=digest_interval_s,
            clock=clock,
            data_keys=data_keys,
        )

    def open(self) -> None:
        """Open the log and read the key now (creating them, the log with its first digest;
        cutting a torn tail), so a problem shows at start-up, not at the first audited action
        or the first hourly digest."""
        self._locked(self._signing_key)

    def record(
        self,
        actor: Actor,
        action: AuditAction,
        outcome: Outcome = Outcome.OK,
        detail: AuditDetail | None = None,
    ) -> AuditRecord:
        """Append one record and fsync it; only then return it. ``AuditUnavailableError``
        when it cannot be written: refuse the audited action. ``ValueError`` (an action that
        is not ours) and ``TypeError`` are bugs in the caller, raised before any I/O."""
        action = AuditAction(action)
        if action in LOG_OWN_ACTIONS:
            raise ValueError(f"{action} records are written by the audit log itself")
        if not isinstance(actor, Actor) or not isinstance(detail, AuditDetail | None):
            raise TypeError("the actor and detail must be an Actor and an AuditDetail")
        outcome = Outcome(outcome)
        return self._locked(lambda: self._append(self._new_record(actor, action, outcome, detail)))

    def write_digest(self) -> AuditRecord:
        """Append a digest record signing the chain head, now."""
        return self._locked(lambda: self._append_digest(self._now_ms()))

    def maybe_write_digest(self, now_ms: int | None = None) -> AuditRecord | None:
        """A digest if ``digest_interval_s`` has passed since the latest one and records came
        after it; the server calls this every minute or so."""
        at_ms = self._now_ms() if now_ms is None else now_ms
        return self._locked(lambda: self._digest_if_due(at_ms))

    def close(self) -> None:
        """Sign the records since the latest digest (the shutdown digest), then close. A later
        ``record`` opens the log again."""
        with self._lock:
            if self._fd is None:
                return
        try:
            self._locked(self._digest_if_unsigned)
        finally:
            with self._lock:
                self._forget_file()

    def rotate(self, now_ms: int, older_than_ms: int) -> Path | None:
        """Archive the log when its first record is older than ``older_than_ms`` (epoch ms)
        and start a new one; returns the archive, or None (not due). See ``ARCHIVE_DIR``."""
        old_fd: list[int] = []
        try:
            return self._locked(lambda: self._rotate_if_due(now_ms, older_than_ms, old_fd))
        finally:
            for fd in old_fd:  # unlocked by _locked; closed only now
                os.close(fd)

    def delete_archives_before(self, cutoff_ms: int) -> ArchiveDeletion:
        """Delete archived logs whose last record is older than ``cutoff_ms``."""
        files = records = 0
        for archive in archived_logs(self.path):
            if archive.last_at_ms >= cutoff_ms:
                continue
            with archive.path.open("rb") as log:
                records += sum(1 for _ in log)
            archive.path.unlink()
            head_path_for(archive.path).unlink(missing_ok=True)
            files += 1
        if files:
            _fsync_dir(self.path.parent / ARCHIVE_DIR)
        return ArchiveDeletion(files, records)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- under the lock --------------------------------------------------------------------

    def _locked(self, step: Callable[[], _T]) -> _T:
        """Run ``step`` holding the thread lock and the file's ``flock``, with the chain head
        caught up with whatever other processes appended."""
        with self._lock:
            try:
                fd = self._locked_file()
                try:
                    self._catch_up(fd)
                    return step()
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError as error:
                self._forget_file()
                reason = error.strerror or type(error).__name__
                raise AuditUnavailableError(
                    f"the audit log cannot be written: {reason}: {error.filename or self.path}"
                ) from error
            except AuditUnavailableError:
                self._forget_file()
                raise

    def _locked_file(self) -> int:
        """The log's file, ``flock``-ed. A rotation renames the log while others wait for the
        lock: whoever then gets it on the old file lets go and takes the new one."""
        while True:
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self._is_still_the_log(fd):
                return fd
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._forget_file()

    def _file(self) -> int:
        if self._fd is not None and self._is_still_the_log(self._fd):
            return self._fd
        self._forget_file()
        if not self.path.exists() and self.head_path.exists():
            # Deleting the log must not quietly start a fresh chain that hides the old one.
            raise AuditUnavailableError(
                f"the audit log {self.path} is missing but {self.head_path.name} shows it had "
                "digests; restore it, or move the head file aside to start a new log"
            )
        _make_private_dirs(self.path.parent)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        _fsync_dir(self.path.parent)  # a log just created must survive a crash too
        return self._fd

    def _is_still_the_log(self, fd: int) -> bool:
        """Whether the open file is still the one at ``path``: appending to a file someone
        renamed or deleted would be writing records nobody will read."""
        try:
            on_disk = self.path.stat()
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    def _forget_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):  # already unusable; the next record reopens
                os.close(fd)
        self._head = None

    def _catch_up(self, fd: int) -> None:
        """Re-read the chain head when the file is not as this process left it: just opened,
        appended to by another process, torn by a crash, or cut by someone else."""
        size = os.fstat(fd).st_size
        known = self._head
        if known is not None and size == known.end:
            return
        end, cut = _cut_torn_tail(fd, size)
        self._head = _read_chain_head(fd, end, self._codec)
        if self._head.count == 0:
            self._append_digest(self._now_ms())  # a log opens with a digest: see the head file
        if cut:
            self._append_own(AuditAction.AUDIT_TAIL_CUT, cut)
        if known is not None and size < known.end:
            # Evidence in the log itself; verify also catches it when a digest was cut.
            self._append_own(AuditAction.AUDIT_LOG_SHRANK, known.end - size)

    def _append_own(self, action: AuditAction, size_bytes: int) -> None:
        detail = AuditDetail(size_bytes=min(size_bytes, COUNT_LIMIT - 1))
        self._append(self._new_record(Actor.system(), action, detail=detail))

    def _chain(self) -> _ChainHead:
        assert self._head is not None, "only called after _catch_up"
        return self._head

    def _new_record(
        self,
        actor: Actor,
        action: AuditAction,
        outcome: Outcome = Outcome.OK,
        detail: AuditDetail | None = None,
    ) -> AuditRecord:
        head = self._chain()
        at_ms = self._now_ms()
        unsigned = AuditRecord(
            seq=head.count + 1,
            at_ms=at_ms,
            at=iso_utc(at_ms),
            actor=actor,
            action=action,
            outcome=outcome,
            detail=detail,
            prev_sha256=head.sha256,
        )
        return _with_sha256(unsigned)

    def _append(self, record: AuditRecord) -> AuditRecord:
        fd = self._fd
        assert fd is not None, "only called under _locked"
        line = self._codec.store(_encoder.encode(record)) + b"\n"
        try:
            _write_all(fd, line)
            os.fsync(fd)
        except OSError:
            self._cut_back(fd)
            raise
        self._head = self._chain().after(record, len(line))
        self._last_line = line
        return record

    def _cut_back(self, fd: int) -> None:
        """Remove what a failed append left, so no half record stays behind (if this fails
        too, the torn line is cut when the log is next opened)."""
        try:
            os.ftruncate(fd, self._chain().end)
            os.fsync(fd)
        except OSError:
            pass

    def _append_digest(self, at_ms: int, *, write_head: bool = True) -> AuditRecord:
        head = self._chain()
        signature = _sign(
            self._signing_key(), at_ms, head.sha256, head.count, head.digest_signature
        )
        seal = Seal(
            head=head.sha256,
            count=head.count,
            previous_signature=head.digest_signature,
            signature=signature,
        )
        digest = AuditRecord(
            seq=head.count + 1,
            at_ms=at_ms,
            at=iso_utc(at_ms),
            actor=Actor.system(),
            action=AuditAction.AUDIT_DIGEST,
            outcome=Outcome.OK,
            seal=seal,
            prev_sha256=head.sha256,
        )
        record = self._append(_with_sha256(digest))
        if write_head:
            _write_head(self.head_path, self._last_line)
        return record

    def _rotate_if_due(self, now_ms: int, older_than_ms: int, old_fd: list[int]) -> Path | None:
        """Under the lock: sign the end, hard-link the log into the archive with a copy of
        its head file, write the new log aside (its first digest chains to the archived
        log's last signature), rename it over the log, then point the head file at it."""
        fd = self._fd
        assert fd is not None, "only called under _locked"
        first = _first_record(fd, self._codec)
        if first is None or first.at_ms >= older_than_ms:
            return None
        if self._chain().unsigned or self._chain().digest_seq == 0:
            self._append_digest(now_ms)
        last = self._chain()
        archive = self.path.parent / ARCHIVE_DIR / _archive_name(first.at_ms, last.digest_at_ms)
        _make_private_dirs(archive.parent)
        _link_once(self.path, archive)
        _write_head(head_path_for(archive), self.head_path.read_bytes())
        fresh = self.path.with_name(self.path.name + ".new")
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(fresh, flags, 0o600)
        old_fd.append(fd)
        self._head = _ChainHead(0, 0, GENESIS, 0, last.digest_signature, 0)
        self._append_digest(now_ms, write_head=False)
        fresh.replace(self.path)
        _fsync_dir(self.path.parent)
        # A crash just here leaves the head file naming the archived log's last digest:
        # verify says "truncated" until the next digest rewrites it.
        _write_head(self.head_path, self._last_line)
        return archive

    def _digest_if_due(self, at_ms: int) -> AuditRecord | None:
        head = self._chain()
        if head.unsigned == 0 or at_ms - head.digest_at_ms < self.digest_interval_ms:
            return None
        return self._append_digest(at_ms)

    def _digest_if_unsigned(self) -> AuditRecord | None:
        return self._append_digest(self._now_ms()) if self._chain().unsigned else None

    def _signing_key(self) -> bytes:
        if self._key is None:
            try:
                self._key = load_or_create_key(self.key_path)
            except AuditError as error:
                raise AuditUnavailableError(str(error)) from None
        return self._key

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


# --- reading and verifying ----------------------------------------------------------------


@dataclass(frozen=True)
class BrokenRecord:
    """The first place ``verify`` found the log not as written."""

    line: int
    """1-based line of the log; 0 when the head file itself is unreadable."""
    reason: BreakReason
    explanation: str

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line else "the head file"


@dataclass(frozen=True)
class VerifyResult:
    records: int
    """Records other than digests, up to the first broken one."""
    digests: int
    unsigned: int
    """Records after the latest digest: no signature covers them yet."""
    head_checked: bool
    """Whether a head file was there to catch records cut off the end."""
    broken: BrokenRecord | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class _HeadFile:
    """The latest digest as the head file keeps it."""

    seq: int
    record: bytes
    """The digest record's JSON, as the log's line must hold it (decrypted: a rotation
    re-encrypts the log and the head file one after the other)."""


class _Verifier:
    """Checks lines in order, carrying the chain head and the latest digest's signature."""

    def __init__(self, key: bytes, head: _HeadFile | None, codec: _LineCodec) -> None:
        self.key = key
        self.head = head
        self.codec = codec
        self.lines = 0
        self.records = 0
        self.digests = 0
        self.unsigned = 0
        self.sha256 = GENESIS
        self.digest_signature = ""

    def result(self, broken: BrokenRecord | None = None) -> VerifyResult:
        return VerifyResult(
            self.records, self.digests, self.unsigned, self.head is not None, broken
        )

    def feed(self, number: int, line: bytes) -> BrokenRecord | None:
        try:
            plaintext = self.codec.read(line)
        except DamagedFrameError:
            return BrokenRecord(
                number, BreakReason.EDITED, "its encrypted line does not authenticate"
            )
        try:
            record = _decoder.decode(plaintext)
        except msgspec.DecodeError:
            return BrokenRecord(number, BreakReason.MALFORMED, "not an audit record")
        broken = self._check_record(number, line, plaintext, record)
        if broken is None:
            self._advance(record)
        return broken

    def finish(self) -> BrokenRecord | None:
        """After the last line: the head file must name a digest the log still holds."""
        if self.head is None or self.head.seq <= self.lines:
            return None
        return BrokenRecord(
            self.lines + 1,
            BreakReason.TRUNCATED,
            f"the log ends at line {self.lines} but the head file names a digest at line "
            f"{self.head.seq}: records were cut off the end",
        )

    def _check_record(
        self, number: int, line: bytes, plaintext: bytes, record: AuditRecord
    ) -> BrokenRecord | None:
        if _encoder.encode(record) != plaintext or _record_sha256(record) != record.sha256:
            return BrokenRecord(number, BreakReason.EDITED, "its contents do not match its sha256")
        if record.seq != number or record.prev_sha256 != self.sha256:
            return BrokenRecord(
                number,
                BreakReason.DELETED_OR_REORDERED,
                f"record #{record.seq} does not chain to the line before it",
            )
        if record.seal is not None:
            broken = self._check_seal(number, record.at_ms, record.seal)
            if broken is not None:
                return broken
        if self.head is not None and self.head.seq == number and self.head.record != plaintext:
            return BrokenRecord(
                number, BreakReason.BAD_DIGEST, "it is not the digest the head file holds"
            )
        return None

    def _check_seal(self, number: int, at_ms: int, seal: Seal) -> BrokenRecord | None:
        if seal.head != self.sha256 or seal.count != number - 1:
            return BrokenRecord(number, BreakReason.BAD_DIGEST, "it signs another chain head")
        # A log's first digest may carry the archived log's last signature (its anchor).
        if number > 1 and seal.previous_signature != self.digest_signature:
            return BrokenRecord(
                number, BreakReason.BAD_DIGEST, "it does not chain to the previous digest"
            )
        expected = _sign(self.key, at_ms, seal.head, seal.count, seal.previous_signature)
        if not hmac.compare_digest(expected, seal.signature):
            return BrokenRecord(
                number,
                BreakReason.BAD_DIGEST,
                "its signature does not match: records before it were changed and their "
                "hashes recomputed, or the key is not the one that signed it",
            )
        return None

    def _advance(self, record: AuditRecord) -> None:
        self.lines = record.seq
        self.sha256 = record.sha256
        if record.seal is not None:
            self.digests += 1
            self.unsigned = 0
            self.digest_signature = record.seal.signature
        else:
            self.records += 1
            self.unsigned += 1


def _snapshot_lines(log: BinaryIO) -> Iterator[bytes]:
    """The log's lines as of now. The size is read under a shared ``flock``, when no writer
    is mid-line, so a record being written at this moment is left out rather than taken for
    a torn one; the lock is not held while reading, so the writers never wait on a reader."""
    fcntl.flock(log.fileno(), fcntl.LOCK_SH)
    try:
        remaining = os.fstat(log.fileno()).st_size
    finally:
        fcntl.flock(log.fileno(), fcntl.LOCK_UN)
    while remaining > 0:
        line = log.readline(remaining)
        if not line:
            return
        remaining -= len(line)
        yield line


def _read_head_file(path: Path, codec: _LineCodec) -> _HeadFile | None:
    """The head file's digest; None when there is none; ``ValueError`` when it holds
    anything but one digest line."""
    try:
        line = path.read_bytes()
    except FileNotFoundError:
        return None
    if not line.endswith(b"\n"):
        raise ValueError("not a digest record")
    try:
        plaintext = codec.read(line[:-1])
        record = _decoder.decode(plaintext)
    except (msgspec.DecodeError, DamagedFrameError):
        raise ValueError("not a digest record") from None
    if record.seal is None:
        raise ValueError("not a digest record")
    return _HeadFile(record.seq, plaintext)


def verify(path: Path, key: bytes, *, data_keys: DataKeyRing | None = None) -> VerifyResult:
    """Check the hash chain, every digest's signature and the head file; report the first
    broken record. A missing log with a head file is a log cut to nothing. ``DataKeyError``
    when encrypted lines need a data key that is not configured."""
    codec = _LineCodec(data_keys)
    try:
        head = _read_head_file(head_path_for(path), codec)
    except ValueError:
        unreadable = BrokenRecord(0, BreakReason.MALFORMED, "the head file is not a digest record")
        return _Verifier(key, None, codec).result(unreadable)
    verifier = _Verifier(key, head, codec)
    try:
        log = path.open("rb")
    except FileNotFoundError:
        if head is None:
            raise
        return verifier.result(verifier.finish())
    with log:
        for number, raw in enumerate(_snapshot_lines(log), 1):
            if not raw.endswith(b"\n"):
                return verifier.result(
                    BrokenRecord(number, BreakReason.TRUNCATED, "the line stops part-way")
                )
            broken = verifier.feed(number, raw[:-1])
            if broken is not None:
                return verifier.result(broken)
    return verifier.result(verifier.finish())


@dataclass(frozen=True)
class AuditReading:
    records: tuple[AuditRecord, ...]
    unreadable_lines: tuple[int, ...]
    """Lines that are not records, or a last line cut part-way (``verify`` says more)."""


def read_records(
    path: Path, *, since_ms: int = 0, data_keys: DataKeyRing | None = None
) -> AuditReading:
    """The records at or after ``since_ms``, without checking the chain (that is ``verify``).
    ``DataKeyError`` when encrypted lines need a data key that is not configured."""
    codec = _LineCodec(data_keys)
    records: list[AuditRecord] = []
    unreadable: list[int] = []
    with path.open("rb") as log:
        for number, raw in enumerate(_snapshot_lines(log), 1):
            try:
                record = _decoder.decode(codec.read(raw[:-1])) if raw.endswith(b"\n") else None
            except (msgspec.DecodeError, DamagedFrameError):
                record = None
            if record is None:
                unreadable.append(number)
            elif record.at_ms >= since_ms:
                records.append(record)
    return AuditReading(tuple(records), tuple(unreadable))


@dataclass(frozen=True)
class ArchiveCheck:
    """One archived log: its own chain, and whether the log after it continues it."""

    archive: ArchivedLog
    result: VerifyResult
    anchored: bool
    """The next log (a later archive, or the live one) opens with a digest carrying this
    archive's last signature: nothing was put between them or taken out."""


def verify_archives(
    log_path: Path, key: bytes, *, data_keys: DataKeyRing | None = None
) -> list[ArchiveCheck]:
    """``verify`` each archived log beside ``log_path``, oldest first, and check the anchor
    that chains it to the log after it."""
    archives = archived_logs(log_path)
    following = [*(archive.path for archive in archives[1:]), log_path][: len(archives)]
    return [
        ArchiveCheck(
            archive,
            verify(archive.path, key, data_keys=data_keys),
            _anchored(archive.path, after, data_keys),
        )
        for archive, after in zip(archives, following, strict=True)
    ]


def _anchored(archive: Path, after: Path, data_keys: DataKeyRing | None) -> bool:
    sealed = [r.seal for r in read_records(archive, data_keys=data_keys).records if r.seal]
    try:
        opening = read_records(after, data_keys=data_keys).records[:1]
    except FileNotFoundError:
        return False
    first_seal = opening[0].seal if opening else None
    return (
        bool(sealed)
        and first_seal is not None
        and (first_seal.previous_signature == sealed[-1].signature)
    )


def rekey_log(paths: AuditPaths, data_keys: DataKeyRing) -> int:
    """Re-encrypt every line of the log and the head file under the current data key (plain
    lines get encrypted), then each archived log and its head file the same way; records,
    hashes and signatures stay as they were, so ``verify`` still passes. Holds the log's
    ``flock`` meanwhile; run it with the server stopped. Returns the lines rewritten.
    ``AuditError`` names a line that cannot be read (that file is left as it was)."""
    codec = _LineCodec(data_keys)
    lines = _rekey_file(paths.log, paths.head, codec)
    for archive in archived_logs(paths.log):
        lines += _rekey_file(archive.path, head_path_for(archive.path), codec)
    return lines


def _rekey_file(path: Path, head_path: Path, codec: _LineCodec) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as log:
        fcntl.flock(log.fileno(), fcntl.LOCK_EX)
        try:
            lines = [_rekeyed_line(codec, number, raw) for number, raw in enumerate(log, 1)]
            _replace_file(path, b"".join(lines))
            try:
                head = _read_head_file(head_path, codec)
            except ValueError:
                raise AuditError(f"{head_path} is not a digest record") from None
            if head is not None and head.seq <= len(lines):
                _write_head(head_path, lines[head.seq - 1])
        finally:
            fcntl.flock(log.fileno(), fcntl.LOCK_UN)
    return len(lines)


def _rekeyed_line(codec: _LineCodec, number: int, raw: bytes) -> bytes:
    if not raw.endswith(b"\n"):
        raise AuditError(f"line {number} of the audit log is torn; open the log first")
    try:
        return codec.store(codec.read(raw[:-1])) + b"\n"
    except DamagedFrameError:
        raise AuditError(f"line {number} of the audit log does not authenticate") from None


def _replace_file(path: Path, content: bytes) -> None:
    temporary = path.with_name(path.name + ".rekey")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)
    _fsync_dir(path.parent)
