"""What several commands share: the data directory and settings options, and how an expected
failure (bad settings, a database held by a running server, no data directory) is told."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from stumble.config import Settings, SettingsError, load_settings

CONFIG_FILE = "stumble.toml"
# What `stumble serve` (config, spool) or `stumble simulate` (database) leave in a data directory
DATA_DIR_MARKERS = (CONFIG_FILE, "stumble.duckdb", "spool")


class CommandError(Exception):
    """A failure the user can fix: ``main`` prints it as one line and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="data directory (default ./stumble-data)")
    parser.add_argument("--config", type=Path, help="settings file (default DATA/stumble.toml)")


def settings_from(args: argparse.Namespace, **overrides: object) -> Settings:
    """Defaults < config file < STUMBLE_* variables < these command-line values."""
    data_dir = args.data
    config = args.config
    if config is None:
        base = data_dir if data_dir is not None else Path(Settings().data_dir)
        config = base / CONFIG_FILE
    settings = load_settings(config)
    if data_dir is not None:
        settings.data_dir = str(data_dir)
    for name, value in overrides.items():
        if value is not None:
            setattr(settings, name, value)
    settings.validate()  # flags can combine into what the file alone could not (--tls-cert)
    return settings


def require_data_dir(settings: Settings) -> Path:
    """The data directory, which must exist: a command that reads one never creates it."""
    data_dir = Path(settings.data_dir)
    if not any((data_dir / marker).exists() for marker in DATA_DIR_MARKERS):
        raise CommandError(
            f"no stumble data directory at {data_dir}; "
            "start `stumble serve --data DIR` first, or pass --data DIR"
        )
    return data_dir


def plan_of(settings: Settings) -> TrackingPlan:
    """The tracking plan the settings name (the example plan when they name none)."""
    from stumble.plan.load import default_plan_path, load_plan  # noqa: PLC0415

    return load_plan(Path(settings.plan) if settings.plan else default_plan_path())


def rollup_maintainer(store: DuckDBStore, settings: Settings) -> RollupMaintainer:
    """The rollups' maintainer as the server makes it: the same plan and the same settings
    (frustration thresholds), so a command builds the cells the server would."""
    from stumble.analytics.frustration import FrustrationThresholds  # noqa: PLC0415
    from stumble.rollups import RollupMaintainer  # noqa: PLC0415

    frustration = FrustrationThresholds.from_settings(settings)
    return RollupMaintainer(store, plan_of(settings), frustration=frustration)


@contextlib.contextmanager
def open_database(
    settings: Settings, *, migrate: bool = True, in_use: str = ""
) -> Iterator[DuckDBStore]:
    """The data directory's database, opened directly, closed on exit. A running server holds
    the file: that is one line naming it (``in_use`` says what to do instead)."""
    from stumble.encryption import load_data_keys  # noqa: PLC0415
    from stumble.storage import DuckDBStore, database_path  # noqa: PLC0415
    from stumble.storage.base import DatabaseInUseError  # noqa: PLC0415

    data_dir = require_data_dir(settings)
    path = database_path(data_dir)
    if not path.exists():
        raise CommandError(f"no database at {path}; run `stumble serve` or `stumble simulate`")
    try:
        store = DuckDBStore(
            path,
            threads=settings.duckdb_threads,
            memory_limit=settings.duckdb_memory_limit,
            migrate=migrate,
            data_keys=load_data_keys(settings.data_key_file, data_dir),
        )
    except DatabaseInUseError as error:
        if not in_use:
            raise
        holder = error.holder or "another process"
        raise CommandError(
            f"the database is in use by a running server ({holder}); {in_use}"
        ) from None
    try:
        yield store
    finally:
        store.close()


def expected_failure(error: Exception) -> CommandError | None:  # noqa: PLR0911 - one per kind
    """The one-line form of a failure the user can meet and fix; None for anything else (a
    bug keeps its traceback)."""
    if isinstance(error, CommandError):
        return error
    if isinstance(error, SettingsError):
        return CommandError(str(error), 2)
    # Imported only once something failed: `stumble --help` stays free of DuckDB.
    from stumble.encryption import EncryptionError  # noqa: PLC0415
    from stumble.storage.base import DatabaseInUseError, StorageError  # noqa: PLC0415
    from stumble.storage.duckdb_encryption import DatabaseKeyError  # noqa: PLC0415

    if isinstance(error, EncryptionError | DatabaseKeyError):
        return CommandError(f"encryption at rest: {error}", 2)

    if isinstance(error, DatabaseInUseError):
        return CommandError(
            f"the database is in use by another stumble process ({error.holder or 'unknown'}, "
            f"{error.path}); stop it first, or use --server URL to ask it"
        )
    if isinstance(error, StorageError):
        return CommandError(f"the database failed: {error}")
    if isinstance(error, OSError) and error.filename is not None:
        return CommandError(f"{error.strerror}: {error.filename}")
    return None


if TYPE_CHECKING:  # the audit module is imported only when a change is made
    from stumble.access.audit import AuditAction, AuditDetail, Outcome
    from stumble.encryption import DataKeyRing
    from stumble.plan.model import TrackingPlan
    from stumble.rollups import RollupMaintainer
    from stumble.storage import DuckDBStore

TOKEN_VARIABLE = "STUMBLE_TOKEN"  # noqa: S105 - the variable's name, not a token


def server_headers() -> dict[str, str]:
    """Headers for ``--server`` calls: the API token from ``STUMBLE_TOKEN`` (an environment
    variable, not a flag, so the token stays out of shell history and process lists)."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def refused_by_server(status: int) -> str:
    """What to say when a server refuses a ``--server`` call for want of a credential."""
    if status == 401:
        return (
            f"the server wants an API token: set {TOKEN_VARIABLE} "
            "(stumble tokens create --role ROLE --name NAME on the server)"
        )
    return f"the server answered {status}: this token's role may not read it"


def audit_change(data_dir: Path, action: AuditAction, detail: AuditDetail) -> None:
    """Record a change made from the command line before it is made: when the audit log
    cannot be written, the change is refused (``CommandError``), as the server refuses it."""
    from stumble.access.audit import AuditError, Outcome  # noqa: PLC0415

    try:
        _record_from_cli(data_dir, action, detail, Outcome.OK)
    except AuditError as error:
        raise CommandError(f"{error}; nothing was changed") from None


def _record_from_cli(
    data_dir: Path, action: AuditAction, detail: AuditDetail, outcome: Outcome
) -> None:
    from stumble.access.audit import Actor, AuditLog  # noqa: PLC0415

    audit = AuditLog.in_data_dir(data_dir, data_keys=data_keys_of(data_dir))
    audit.open()
    audit.record(Actor.cli(), action, outcome, detail)
    audit.close()


def data_keys_of(data_dir: Path) -> DataKeyRing | None:
    """The data keys (encryption at rest) for a data directory's own settings file and the
    environment, for commands that are given only the directory."""
    from stumble.encryption import load_data_keys  # noqa: PLC0415

    settings = load_settings(data_dir / CONFIG_FILE)
    return load_data_keys(settings.data_key_file, data_dir)


def audit_revocation(data_dir: Path, action: AuditAction, target: str) -> None:
    """Record a revocation already made; if the log cannot be written, say so on stderr (a
    revocation is never undone for want of its record)."""
    from stumble.access.audit import AuditDetail, AuditError, Outcome  # noqa: PLC0415

    try:
        _record_from_cli(data_dir, action, AuditDetail(target=target), Outcome.OK)
    except AuditError as error:
        print(f"warning: revoked, but not recorded in the audit log: {error}", file=sys.stderr)
