"""The benchmark's order statistics: percentiles interpolate as numpy's default does."""

from __future__ import annotations

import pytest

from bench.stats import median_or_none, percentile


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([3.5], 50) == 3.5
    assert percentile([3.5], 99) == 3.5


def test_percentile_50_of_an_even_sample_is_the_mean_of_the_middle_two() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5


def test_percentile_interpolates_between_order_statistics() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 90) == pytest.approx(90.1)


def test_percentile_0_and_100_are_the_extremes_whatever_the_order() -> None:
    values = [5.0, -1.0, 9.0, 2.0]
    assert percentile(values, 0) == -1.0
    assert percentile(values, 100) == 9.0


def test_percentile_refuses_no_values_and_out_of_range_ranks() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def test_median_or_none_ignores_what_was_not_measured() -> None:
    assert median_or_none([3.0, None, 1.0, 2.0]) == 2.0
    assert median_or_none([None, None]) is None
