"""A variant's win: the pooled two-proportion z-test of the leader against the runner-up."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.tracking.significance import Arm, VariantTest, two_proportion_p_value, variant_test


def test_the_statsmodels_documentation_example():
    # statsmodels' proportions_ztest docs: count = [5, 12], nobs = [83, 99] gives p = 0.159
    # (two-sided, pooled). R's prop.test(c(5, 12), c(83, 99), correct = FALSE) agrees.
    result = variant_test("click", [Arm("A", 5, 83), Arm("B", 12, 99)])
    assert result.leader == "B"
    assert result.runner_up == "A"
    assert result.p_value == pytest.approx(0.159, abs=5e-4)
    assert not result.significant
    assert result.lift == pytest.approx((12 / 99) / (5 / 83) - 1)


def test_a_win_worked_by_hand():
    # 200 of 1000 against 250 of 1000: pooled p = 450 / 2000 = 0.225,
    # SE = sqrt(0.225 * 0.775 * (1/1000 + 1/1000)) = 0.018675, z = 0.05 / 0.018675 = 2.6774,
    # p = 2 * (1 - Phi(2.6774)) = 2 * 0.003710 = 0.00742.
    result = variant_test("open", [Arm("control", 200, 1000), Arm("new subject", 250, 1000)])
    assert result == VariantTest(
        metric="open",
        leader="new subject",
        runner_up="control",
        p_value=pytest.approx(0.00742, abs=5e-5),
        significant=True,
        lift=pytest.approx(0.25),
    )


def test_a_third_arm_is_ranked_but_only_the_top_two_are_compared():
    # 30 of 1000 against 20 of 1000: pooled 0.025, SE = sqrt(0.025 * 0.975 * 0.002) = 0.0069821,
    # z = 0.01 / 0.0069821 = 1.4322, p = 2 * 0.076040 = 0.1521.
    arms = [Arm("A", 20, 1000), Arm("B", 30, 1000), Arm("C", 5, 1000)]
    result = variant_test("conversion", arms)
    assert (result.leader, result.runner_up) == ("B", "A")
    assert result.p_value == pytest.approx(0.1521, abs=5e-4)
    assert result.lift == pytest.approx(0.5)
    assert not result.significant


def test_alpha_decides_what_is_significant():
    arms = [Arm("A", 5, 83), Arm("B", 12, 99)]
    assert variant_test("click", arms, alpha=0.2).significant
    assert not variant_test("click", arms, alpha=0.1).significant
    with pytest.raises(ValueError):
        variant_test("click", arms, alpha=0)
    with pytest.raises(ValueError):
        variant_test("click", arms, alpha=1.5)


def test_no_arm_with_trials_has_no_leader():
    empty = VariantTest("open", None, None, None, significant=False, lift=None)
    assert variant_test("open", []) == empty
    assert variant_test("open", [Arm("A", 0, 0), Arm("B", 0, 0)]) == empty


def test_a_single_arm_leads_alone():
    expected = VariantTest("open", "A", None, None, significant=False, lift=None)
    assert variant_test("open", [Arm("A", 10, 100)]) == expected
    assert variant_test("open", [Arm("A", 10, 100), Arm("B", 0, 0)]) == expected


def test_equal_rates_are_no_evidence_and_ties_go_to_the_larger_arm_then_the_first_given():
    result = variant_test("open", [Arm("A", 10, 100), Arm("B", 20, 200)])
    assert (result.leader, result.runner_up) == ("B", "A")
    assert result.p_value == pytest.approx(1.0)
    assert result.lift == pytest.approx(0.0)
    assert not result.significant
    same = variant_test("open", [Arm("A", 10, 100), Arm("B", 10, 100)])
    assert (same.leader, same.runner_up) == ("A", "B")


def test_all_or_nothing_leaves_no_variation_to_test():
    for arms in ([Arm("A", 0, 50), Arm("B", 0, 80)], [Arm("A", 50, 50), Arm("B", 80, 80)]):
        result = variant_test("click", arms)
        assert result.p_value is None
        assert not result.significant
    assert variant_test("click", [Arm("A", 0, 50), Arm("B", 0, 80)]).lift is None
    assert variant_test("click", [Arm("A", 50, 50), Arm("B", 80, 80)]).lift == pytest.approx(0.0)


def test_a_win_over_nothing_has_a_p_value_but_no_lift():
    # 10 of 100 against 0 of 100: pooled 0.05, SE = sqrt(0.05 * 0.95 * 0.02) = 0.030822,
    # z = 0.1 / 0.030822 = 3.2444, p = 0.001177.
    result = variant_test("click", [Arm("A", 0, 100), Arm("B", 10, 100)])
    assert result.leader == "B"
    assert result.p_value == pytest.approx(0.001177, abs=5e-6)
    assert result.significant
    assert result.lift is None


def test_a_huge_gap_has_a_p_value_of_about_zero_and_never_below():
    result = variant_test("open", [Arm("A", 1, 100_000), Arm("B", 90_000, 100_000)])
    assert result.p_value is not None
    assert 0 <= result.p_value < 1e-12
    assert result.significant


@pytest.mark.parametrize(("successes", "trials"), [(-1, 10), (11, 10), (0, -1)])
def test_impossible_counts_are_refused(successes, trials):
    with pytest.raises(ValueError, match="arm 'A'"):
        Arm("A", successes, trials)


def test_the_p_value_of_arms_without_trials_is_undefined():
    assert two_proportion_p_value(Arm("A", 0, 0), Arm("B", 3, 10)) is None


def _pearson_chi_square_p(a: Arm, b: Arm) -> float:
    """The p-value of Pearson's chi-square on the 2x2 table, which equals the pooled z-test's."""
    table = [[a.successes, a.trials - a.successes], [b.successes, b.trials - b.successes]]
    total = a.trials + b.trials
    columns = [table[0][0] + table[1][0], table[0][1] + table[1][1]]
    statistic = sum(
        (table[row][column] - rows * columns[column] / total) ** 2
        / (rows * columns[column] / total)
        for row, rows in enumerate((a.trials, b.trials))
        for column in (0, 1)
    )
    return math.erfc(math.sqrt(statistic / 2))  # the chi-square tail with one degree of freedom


ARM = st.integers(1, 5000).flatmap(
    lambda n: st.builds(Arm, st.just("x"), st.integers(0, n), st.just(n))
)


@settings(max_examples=300, deadline=None)
@given(first=ARM, second=ARM)
def test_the_p_value_matches_pearsons_chi_square(first, second):
    p = two_proportion_p_value(first, second)
    pooled = first.successes + second.successes
    if pooled in {0, first.trials + second.trials}:
        assert p is None
    else:
        assert p is not None
        assert 0 <= p <= 1
        assert p == pytest.approx(_pearson_chi_square_p(first, second), rel=1e-6, abs=1e-12)
        assert two_proportion_p_value(second, first) == pytest.approx(p)


@settings(max_examples=300, deadline=None)
@given(arms=st.lists(ARM, max_size=5), names=st.permutations(list("ABCDE")))
def test_the_leader_has_the_highest_rate_and_the_runner_up_the_next(arms, names):
    arms = [Arm(name, arm.successes, arm.trials) for name, arm in zip(names, arms, strict=False)]
    result = variant_test("open", arms)
    rates = sorted((arm.successes / arm.trials for arm in arms), reverse=True)
    by_name = {arm.name: arm.successes / arm.trials for arm in arms}
    assert (result.leader is None) if not arms else (by_name[result.leader] == rates[0])
    assert (result.runner_up is None) if len(arms) < 2 else (by_name[result.runner_up] == rates[1])
    assert result.significant == (result.p_value is not None and result.p_value < 0.05)
