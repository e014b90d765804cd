"""The evaluation protocol: the rules every route (CLI, notebook, sweep, fine-tuning) obeys.

- :mod:`~mer_cache.protocol.labels`: labels to classes (one path for every caller);
- :mod:`~mer_cache.protocol.folds`, :mod:`~mer_cache.protocol.assignment`: subject folds and
  the subject -> fold map recorded with fine-tuned trunks;
- :mod:`~mer_cache.protocol.metrics`, :mod:`~mer_cache.protocol.intervals`: UF1 / UAR by the
  MEGC formula over the full class list, pooled over folds, with subject-bootstrap intervals;
- :mod:`~mer_cache.protocol.epochs`, :mod:`~mer_cache.protocol.early_stopping`: the one epoch
  loop, early-stopped on validation subjects only;
- :mod:`~mer_cache.protocol.selection`: nested model selection on training subjects;
- :mod:`~mer_cache.protocol.leakage`: the guard against features whose trunk saw a test subject.

It imports nothing above it (mechanisms, job API, CLI); a contract in the tests keeps it so.
"""
