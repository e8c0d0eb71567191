"""The review's other questions and the judgement on its evidence (issue 11).

- :mod:`.tables` — the predictor and mechanism evidence tables, one row per included study,
  from the baseline's Tables 2–3 and reviewers' confirmed extractions, with a summary per
  factor (studies, patients, directions, pooled log odds ratio when ≥ 2 studies report one).
- :mod:`.findings` — the ``findings`` field type of the extraction form (factor, direction,
  effect measure, value, CI, p), validated against the protocol's vocabularies.
- :mod:`.rob` — risk of bias per study with the protocol's tool: two blind raters, conflicts
  resolved by an admin, Cohen's κ per item and overall.
- :mod:`.grade` — GRADE per outcome: each domain's downgrade proposed from the numbers,
  confirmed by a reviewer; the sensitivity estimate restricted to low risk-of-bias studies.
- :mod:`.snapshots` — what changed since the last recompute, in sentences for the digest.
- :mod:`.summary` — the summary-of-findings table of a review (page, CSV, JSON).

Functions taking ``*, session`` may flush and never commit. Errors (:mod:`.errors`):
``EvidenceError`` > ``EvidenceInputError`` (a bad value, naming the field),
``EvidenceNotFound``, ``EvidenceConflict``.
"""
