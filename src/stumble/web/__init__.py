"""Web edges besides ingest: the demo service desk that ``stumble demo`` serves (and, later, the
dashboard pages and read API). Nothing else in stumble imports this package."""
