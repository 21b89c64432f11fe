"""Soak summary maths (pure): growth between the first and last fifth, and the slope."""
import pytest

from app.bench.soak import slope_bytes_per_hour, summarize


def test_flat_memory_has_no_growth_and_no_slope():
    samples = [(t * 30.0, 100_000_000 + (t % 3) * 1000) for t in range(60)]
    out = summarize(samples, warmup_s=300)
    assert out["growth_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert abs(out["slope_second_half_bytes_per_hour"]) < 10_000


def test_a_leak_shows_in_growth_and_slope():
    leak_per_s = 1_000  # 3.6 MB an hour
    samples = [(t * 30.0, 100_000_000 + int(t * 30.0 * leak_per_s)) for t in range(60)]
    out = summarize(samples, warmup_s=300)
    assert out["growth_ratio"] > 1.01
    assert out["slope_second_half_bytes_per_hour"] == pytest.approx(leak_per_s * 3600, rel=1e-6)


def test_too_short_a_run_is_an_error():
    with pytest.raises(ValueError, match="run longer"):
        summarize([(400.0, 1), (430.0, 1)], warmup_s=300)
    assert slope_bytes_per_hour([(0.0, 5)]) == 0.0
