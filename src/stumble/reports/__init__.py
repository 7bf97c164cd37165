"""Reports for people: the catalog of named reports (what the read API and ``stumble report``
serve), and the weekly "top problems" list that ranks what the analytics found by impact and
turns each problem into a plain-language finding and a suggested action.

``analytics`` computes; this package decides what is worth a person's attention.
"""
