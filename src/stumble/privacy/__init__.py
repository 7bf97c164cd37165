"""Privacy: nothing personal gets past the collector.

The package turns client strings into values that are safe to store, or refuses them:

- ``normalize``: Unicode canonicalisation done before any detector looks at a string, so that
  fullwidth digits, zero-width characters and digit-group separators cannot hide a number.
- ``detectors``: rule-based detectors for personal data and secrets (Kazakhstan IIN/BIN,
  payment cards, Russian INN/SNILS, phones, e-mail, IBAN, IP addresses, bearer tokens, JWTs,
  PEM keys, URL credentials, catch-alls for digit runs and random tokens) and sensitive key
  names. Checksums confirm candidates; nothing here uses NLP, so it is fast and predictable.
- ``urls``: reduces a route or URL to a path template (``/requests/:id/edit``), reporting
  what it removed.
- ``policy`` and ``guard``: what a detector hit does to an event (drop the value or refuse
  the event) and the guard that applies the closed schema, the tracking plan and the detectors
  to every event before it is spooled.
"""
