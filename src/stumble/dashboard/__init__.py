"""The dashboard's pages as data: what each page shows, built from the reports.

Pure code (no HTTP, no HTML): ``web/dashboard.py`` serves these pages and renders them with
templates; the weekly digest reuses the same charts. Module map:

- ``model``: the typed view model (``Page``, its sections and blocks);
- ``filters``: the filter bar's state, parsed from and written back to the URL;
- ``inventory``: which environments, versions and flags hold data (the pickers' choices);
- ``cache``: report results shared between page views for a short time;
- ``charts``: Vega-Lite specs built from report tables;
- ``pages``: one builder per page.
"""
