"""The win-back lift, stratified by the holdout percent each sequence was enrolled under.

A merchant may change winback_holdout_percent: each percent is its own randomised comparison
(its treated and held-out sequences drawn in the same runs), with its own treated/holdout
shares. Pooling them is biased (Simpson's paradox): a period at 50 % held out with a low
return rate and one at 10 % with a high rate put most of the holdout in the low period and
most of the treated in the high one, a lift where neither period has one.

So the lift is per stratum (one holdout percent): treated rate − holdout rate, combined as a
mean weighted by the stratum's sequences (treated + held out) — the lift an average
sequence enrolled while a holdout ran saw, each period counting as many sequences as it had
(not the Cochran–Mantel–Haenszel n_t·n_h/(n_t+n_h), which estimates a common lift more
tightly but would weight a 10 % period less than its share of the customers). A stratum
lacking either group contributes nothing.

The 95 % interval is Wald's: the variance of the weighted sum, Σ w² (p_t(1−p_t)/n_t +
p_h(1−p_h)/n_h) / (Σ w)². Small or extreme groups (a rate of 0 or 100 %) make it too narrow.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class LiftStratum:
    """The sequences enrolled under one holdout percent: each group's size and how many came back."""
    holdout_percent: int
    treated: int
    treated_ordered: int
    holdout: int
    holdout_ordered: int


@dataclass(frozen=True)
class Lift:
    # Totals over the strata compared (both groups present), as the results report them.
    treated: int = 0
    treated_ordered: int = 0
    holdout: int = 0
    holdout_ordered: int = 0
    # Percentage points, 2 decimals; None without a stratum holding both groups.
    points: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    significant: bool = False  # the interval excludes 0


def stratified_lift(strata: Iterable[LiftStratum]) -> Lift:
    used = [s for s in strata if s.treated and s.holdout]
    if not used:
        return Lift()
    weight = sum(s.treated + s.holdout for s in used)
    estimate = variance = 0.0
    for s in used:  # w is 1.0 for a single stratum: exactly the unstratified lift
        w, p_t, p_h = (s.treated + s.holdout) / weight, s.treated_ordered / s.treated, s.holdout_ordered / s.holdout
        estimate += w * (p_t - p_h)
        variance += w * w * (p_t * (1 - p_t) / s.treated + p_h * (1 - p_h) / s.holdout)
    margin = Z95 * math.sqrt(variance)
    low, high = _points(estimate - margin), _points(estimate + margin)
    # Judged on the interval as shown (2 decimals): float noise around 0 is no finding.
    return Lift(treated=sum(s.treated for s in used), treated_ordered=sum(s.treated_ordered for s in used),
                holdout=sum(s.holdout for s in used), holdout_ordered=sum(s.holdout_ordered for s in used),
                points=_points(estimate), ci_low=low, ci_high=high, significant=low > 0 or high < 0)


def _points(share: float) -> float:
    return round(share * 100, 2) + 0.0  # + 0.0: no "-0.0" for a lift of nothing
