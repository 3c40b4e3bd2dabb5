"""Is a variant's win real, or could chance alone explain it?

The arm with the highest rate leads. It is compared with the runner-up, the
arm with the next highest rate, by a two-sided two-proportion z-test with a
pooled standard error: the p-value is the chance of a gap at least this wide
between the two if both arms in truth had the same rate. The win is called
significant when that chance is below `alpha`.

Only the top two arms are compared, because that is the question a sender
asks before sending the winner to everyone: is it ahead of the next best?
The normal approximation behind the test is rough for small arms (a handful
of successes or failures), where the p-value should be read with care.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Final

_STANDARD_NORMAL: Final = NormalDist()


@dataclass(frozen=True)
class Arm:
    name: str
    successes: int
    trials: int

    def __post_init__(self) -> None:
        if self.trials < 0 or not 0 <= self.successes <= self.trials:
            raise ValueError(
                f"arm {self.name!r}: successes must be between 0 and trials, "
                f"and trials must not be negative"
            )


@dataclass(frozen=True)
class VariantTest:
    metric: str
    leader: str | None
    runner_up: str | None
    p_value: float | None
    significant: bool
    lift: float | None


def variant_test(metric: str, arms: Sequence[Arm], *, alpha: float = 0.05) -> VariantTest:
    """The leading arm against the runner-up; arms without trials take no part.

    Equal rates are ordered by more trials first, then by the order given.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    ranked = _ranked(arms)
    if not ranked:
        return VariantTest(metric, None, None, None, significant=False, lift=None)
    leader = ranked[0]
    if len(ranked) == 1:
        return VariantTest(metric, leader.name, None, None, significant=False, lift=None)
    runner_up = ranked[1]
    p_value = two_proportion_p_value(leader, runner_up)
    return VariantTest(
        metric,
        leader.name,
        runner_up.name,
        p_value,
        significant=p_value is not None and p_value < alpha,
        lift=_lift(leader, runner_up),
    )


def two_proportion_p_value(first: Arm, second: Arm) -> float | None:
    """Two-sided p-value of the pooled z-test; None when it is undefined.

    It is undefined when an arm has no trials, or when the pooled rate is 0
    or 1 (no successes at all, or nothing else), which leaves no variation
    to measure the gap against.
    """
    if not first.trials or not second.trials:
        return None
    pooled = Fraction(first.successes + second.successes, first.trials + second.trials)
    variance = pooled * (1 - pooled) * (Fraction(1, first.trials) + Fraction(1, second.trials))
    if variance == 0:
        return None
    z = float(_rate(first) - _rate(second)) / math.sqrt(variance)
    # The lower tail keeps its precision where 1 - cdf would round to zero.
    return min(1.0, 2 * _STANDARD_NORMAL.cdf(-abs(z)))


def _rate(arm: Arm) -> Fraction:
    return Fraction(arm.successes, arm.trials)


def _ranked(arms: Sequence[Arm]) -> list[Arm]:
    tried = [arm for arm in arms if arm.trials]
    return sorted(tried, key=lambda arm: (-_rate(arm), -arm.trials))


def _lift(leader: Arm, runner_up: Arm) -> float | None:
    if not runner_up.successes:
        return None  # a lift over nothing is not a number
    return float(_rate(leader) / _rate(runner_up) - 1)
