"""Analytics: turn stored events into answers (funnels, field errors, step and operation times,
before/after verdicts). ``stats`` holds the pure statistics those answers are judged with:
confidence intervals, significance tests, quantiles that match the storage engine, verdicts.
"""
