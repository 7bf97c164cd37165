"""``stumble simulate``: the service desk's simulated traffic, sent to a server or stored.

``--send URL --key KEY`` posts the sessions to a running collector with the Python SDK, as an
application would. ``--data DIR`` stores them in that data directory's database through the
collector's own path without HTTP (privacy guard, time rules, enrichment, a segment loaded
by the store), with each session received when the simulation says it was sent. Progress goes
to stderr as plain text: a line that redraws on a terminal, a line per tenth otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO

from stumble.cli.common import add_data_options, plan_of, settings_from

if TYPE_CHECKING:
    from stumble.access.keys import WriteKey
    from stumble.app import CollectorServices
    from stumble.simulate import SimulatedSession

SIMULATOR_KEY_LABEL: Final = "stumble simulate"
REDRAW_EVERY_S: Final = 0.25


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser(
        "simulate",
        help="generate realistic service-desk traffic with known ground truth",
        description="Sessions of the example plan's service desk: the seed's request form "
        "(ui_version 1.4.2, fixed in 2.0.0 from --change-day), search, approvals, exports.",
    )
    sim.add_argument("--sessions", type=int, default=20_000, help="sessions (default 20000)")
    sim.add_argument("--days", type=int, default=14, help="days ending yesterday (default 14)")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument(
        "--change-day",
        type=int,
        default=None,
        help="day index from which sessions run 2.0.0 (default: half-way; -1: never)",
    )
    sim.add_argument("--aa-flag", help="A/A mode: set this flag on a random half of sessions")
    sim.add_argument("--send", metavar="URL", help="post to a running collector")
    sim.add_argument("--key", help="write key (required with --send; with --data, optional)")
    add_data_options(sim)
    sim.add_argument(
        "--env",
        default="prod",
        help="with --data and no --key: the environment of the simulator's own key (prod)",
    )
    sim.set_defaults(func=_simulate)


@dataclass
class Progress:
    """Plain-text progress on a stream: redrawn in place on a terminal, else every tenth."""

    total: int
    stream: TextIO
    label: str = "simulate"
    done: int = 0
    events: int = 0
    _last_draw: float = 0.0
    _last_tenth: int = -1

    def add(self, events: int) -> None:
        self.done += 1
        self.events += events
        if self.stream.isatty():
            now = time.monotonic()
            if now - self._last_draw >= REDRAW_EVERY_S or self.done == self.total:
                self._last_draw = now
                self.stream.write("\r" + self.line())
                self.stream.flush()
        else:
            tenth = self.done * 10 // max(self.total, 1)
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self.stream.write(self.line() + "\n")

    def line(self) -> str:
        share = self.done / max(self.total, 1)
        filled = round(share * 30)
        bar = "#" * filled + "." * (30 - filled)
        return (
            f"{self.label} [{bar}] {self.done}/{self.total} sessions "
            f"({share:.0%}), {self.events} events"
        )

    def finish(self) -> None:
        if self.stream.isatty():
            self.stream.write("\n")
        self.stream.flush()


def _params(args: argparse.Namespace) -> object:
    from stumble.simulate import SimulationParams  # noqa: PLC0415

    change = args.change_day if args.change_day is not None else args.days // 2
    return SimulationParams(
        sessions=args.sessions,
        days=args.days,
        seed=args.seed,
        ui_version_change_day=None if change < 0 else change,
        aa_flag=args.aa_flag,
    )


def _check(args: argparse.Namespace) -> str | None:
    if args.send and args.data:
        return "choose one of --send URL and --data DIR"
    if not args.send and not args.data:
        return "say where the traffic goes: --send URL --key KEY, or --data DIR"
    if args.send and not args.key:
        return "--send needs --key (a write key of the collector)"
    if args.sessions < 1 or args.days < 1:
        return "--sessions and --days must be at least 1"
    return None


def _simulate(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from stumble.simulate import Simulation, SimulationParams  # noqa: PLC0415

    params = _params(args)
    assert isinstance(params, SimulationParams)
    settings = settings_from(args)
    plan = plan_of(settings)
    try:
        simulation = Simulation(params, plan)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    progress = Progress(params.sessions, sys.stderr)
    started = time.perf_counter()
    sessions = _counted(simulation.sessions(), progress)
    status = _send(args.send, args.key, sessions) if args.send else _store(args, sessions)
    progress.finish()
    print(
        f"simulated {progress.done} sessions, {progress.events} events in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return status


def _counted(
    sessions: Iterator[SimulatedSession], progress: Progress
) -> Iterator[SimulatedSession]:
    for session in sessions:
        yield session
        progress.add(len(session.events))


def _send(url: str, key: str, sessions: Iterator[SimulatedSession]) -> int:
    from stumble.client import StumbleClient  # noqa: PLC0415

    # The client stamps sent_at with the real time: events keep their simulated past times.
    with StumbleClient(url, key, batch_size=200) as client:
        for session in sessions:
            client.track_many(session.events)
        client.flush()
        stats = client.stats
    print(
        f"sent: {stats.accepted} accepted, {stats.redacted} redacted, {stats.rejected} "
        f"rejected, {stats.dropped} dropped",
        file=sys.stderr,
    )
    for reason, count in sorted(stats.rejected_by_reason.items()):
        print(f"  rejected {reason}: {count}", file=sys.stderr)
    return 0 if not stats.dropped else 1


def _store(args: argparse.Namespace, sessions: Iterator[SimulatedSession]) -> int:
    from stumble.app import CollectorServices  # noqa: PLC0415
    from stumble.storage import StorageError  # noqa: PLC0415

    settings = settings_from(args)
    try:
        services = CollectorServices(settings)
    except StorageError:
        print(
            "error: the database is in use (a running server holds it); use --send", file=sys.stderr
        )
        return 1
    try:
        key = _write_key(services, args)
        if key is None:
            print("error: --key is not a usable write key of this data directory", file=sys.stderr)
            return 2
        ingest = services.offline_ingest(key)
        for session in sessions:
            # Received a moment after the simulated send: the history arrives on its days.
            ingest.add(session.events, sent_at=session.sent_at, received_at_ms=session.sent_at + 40)
        result = ingest.close()
        _flush_counts(services)
    finally:
        services.store.close()
        with contextlib.suppress(OSError):  # each segment is deleted once loaded
            (services.data_dir / "offline").rmdir()
    print(
        f"stored: {result.accepted} accepted ({key.environment}), {result.redacted} redacted, "
        f"{result.rejected} rejected, {result.duplicates} duplicates",
        file=sys.stderr,
    )
    return 0


def _write_key(services: CollectorServices, args: argparse.Namespace) -> WriteKey | None:
    if args.key:
        return services.keys.authenticate(args.key)
    for key in services.keys.all():
        if key.label == SIMULATOR_KEY_LABEL and key.environment == args.env and not key.revoked:
            return key
    _, key = services.keys.create(args.env, [], label=SIMULATOR_KEY_LABEL)
    return key


def _flush_counts(services: CollectorServices) -> None:
    """Rejections and redactions of the run into the quarantine counters (codes only)."""
    import datetime as dt  # noqa: PLC0415

    from stumble.storage import IngestCount  # noqa: PLC0415

    pending = services.quarantine.drain()
    rows = [
        IngestCount(
            day=dt.date.fromisoformat(key.day),
            environment=key.environment,
            event_name=key.event_name,
            outcome="rejected" if key.outcome == "rejected" else "redacted",
            reason=key.reason,
            field_path=key.field_path,
            count=count,
        )
        for key, count in pending.items()
    ]
    if rows:
        services.store.add_ingest_counts(rows)
