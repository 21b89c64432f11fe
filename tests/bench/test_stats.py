"""The bench's arithmetic: medians, percentiles, per-round ratios (no broker, no timing)."""
import pytest

from app.bench.stats import median, paired_ratios, percentile, ratio_summary, relative_error, summarize


def test_median_of_odd_and_even_counts():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError):
        median([])


def test_summarize_ignores_missing_runs():
    assert summarize([10.0, None, 30.0, 20.0]) == {"median": 20.0, "min": 10.0, "max": 30.0, "n": 3}
    assert summarize([None, None]) is None


def test_percentile_interpolates_like_numpy_linear():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 1.0) == 5.0
    assert percentile(values, 0.99) == pytest.approx(4.96)
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError):
        percentile(values, 1.5)


def test_ratios_pair_runs_of_the_same_round():
    # Round 2 ran while the machine was busy: both rows slowed down, the ratio held.
    lensbridge = [8000.0, 4000.0, 7800.0]
    textbook = [1000.0, 500.0, 1000.0]
    assert paired_ratios(lensbridge, textbook) == [8.0, 8.0, 7.8]
    assert ratio_summary(lensbridge, textbook) == {"median": 8.0, "min": 7.8, "max": 8.0, "n": 3}


def test_ratios_skip_failed_runs_and_zero_denominators():
    assert paired_ratios([10.0, None, 30.0], [5.0, 5.0, 0.0]) == [2.0]
    assert ratio_summary([None], [1.0]) is None


def test_relative_error():
    assert relative_error(101.0, 100.0) == pytest.approx(0.01)
    assert relative_error(1.0, 0.0) == float("inf")
