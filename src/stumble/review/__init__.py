"""The review loop: the weekly digest, alerts that do not cry wolf, and fixes that verify
themselves on their date.

Module map:

- ``calendar``: the review's time zone and ISO weeks;
- ``messages``: what is sent (``Message``) and who sends it (``Notifier``);
- ``delivery``: SMTP and webhooks, idempotent per (message key, recipient);
- ``digest``: the weekly digest as data, rendered to standalone HTML and to Markdown;
- ``alerts``: rules, their evaluation and state machine, history and silences;
- ``fixes``: fix records and their verification;
- ``scheduler``: the jobs the server runs on their schedule.

Everything here keeps to the product's rule: teams, identifiers, counts and reason codes —
never a person, never a submitted value.
"""
