"""Dashboard page times, server-side: building each page from the reports and rendering it.

    .venv/bin/python benchmarks/pages.py [--events 72000] [--data /tmp/stumble-bench-pages]

The database is built by ``queries.py``'s builder (the simulator's sessions enriched as the
collector does, loaded by the loader's own path) over 28 days; ``--events 72000`` is about the
demo's dataset, ``--events 10000000`` the issue's large one (built once, reused). Pages cover the
last 7 days of the data (the dashboard's default period) in ``prod``. Rollups are brought up
to date first, as the server's loader keeps them: reports read them where they answer.

``cold``: a fresh results cache (every report computed); ``cached``: the same page again within
the cache's minute (what the rest of a weekly review sees). Both include rendering the HTML.
DuckDB uses two threads. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from queries import DAYS, START, build, refresh_rollups, template_stored_routes
from stumble.analytics.queries import DEFAULT_MIN_GROUP_SIZE
from stumble.dashboard import pages
from stumble.dashboard.cache import ResultCache
from stumble.dashboard.context import PageContext
from stumble.dashboard.filters import RANGE_LABELS, ViewFilters
from stumble.dashboard.inventory import take_inventory
from stumble.dashboard.model import Page
from stumble.plan.load import default_plan_path, load_plan
from stumble.storage import DuckDBStore
from stumble.web.dashboard import FilterBar, Renderer

PAGES = pages.REPORT_PAGES


def render(renderer: Renderer, page: Page, ctx: PageContext) -> int:
    bar = FilterBar(ctx.filters, ctx.inventory, (), (), RANGE_LABELS)
    html = renderer.templates.get_template("page.html").render(
        assets={}, page=page, nav=[], current="", principal=None, bar=bar, export_query=""
    )
    return len(html)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=72_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/stumble-bench-pages"))
    args = parser.parse_args()
    marker = args.data / "built.json"
    built = json.loads(marker.read_text()) if marker.exists() else {}
    if built.get("events") != args.events:
        build(args.data, args.events)
    else:
        template_stored_routes(args.data)
    refresh_rollups(args.data)  # what the server's loader keeps current
    store = DuckDBStore(args.data / "stumble.duckdb", threads=2)
    plan = load_plan(default_plan_path())
    renderer = Renderer()
    end = START + dt.timedelta(days=DAYS - 1)
    query = {"range": "custom", "from": (end - dt.timedelta(days=6)).isoformat(),
             "to": end.isoformat(), "env": "prod"}  # fmt: skip
    filters = ViewFilters.parse(query, end)
    rows = store.count_events()
    print(f"{rows:,} events; pages over {filters.start} to {filters.end}, 2 DuckDB threads")
    print(f"{'page':<12}{'cold ms':>10}{'cached ms':>11}{'html kB':>9}")
    for name, builder in PAGES.items():
        cache = ResultCache()
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            inventory = take_inventory(store, filters.start, filters.end, filters.env)
            ctx = PageContext(store, plan, filters, inventory, {}, DEFAULT_MIN_GROUP_SIZE, cache)
            size = render(renderer, builder(ctx), ctx)
            timings.append((time.perf_counter() - started) * 1000)
        print(f"{name:<12}{timings[0]:>10.0f}{timings[1]:>11.0f}{size / 1024:>9.0f}")
    store.close()


if __name__ == "__main__":
    main()
