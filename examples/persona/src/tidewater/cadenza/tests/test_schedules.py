"""Boundary tests for every schedule.

Every test in this file is a scar:
- boundary +/- 1, because of a join that counted from zero;
- 2x the last step, because of a run that was extended past its cosine;
- warmup of 0, because of a NaN in a debug config.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from cadenza.schedules import constant, cosine, inverse_sqrt, join, linear_warmup, shift, wsd

PEAK = 3e-4
TOTAL = 10_000


def _points(*boundaries: int) -> list[int]:
    pts = {0, TOTAL, 2 * TOTAL}
    for b in boundaries:
        pts.update({b - 1, b, b + 1})
    return sorted(p for p in pts if p >= 0)


SCHEDULES = {
    "constant": (constant(PEAK), []),
    "warmup": (linear_warmup(PEAK, 500), [500]),
    "warmup0": (linear_warmup(PEAK, 0), [0]),
    "cosine": (cosine(PEAK, TOTAL), [TOTAL]),
    "inverse_sqrt": (inverse_sqrt(PEAK, 500), [500]),
    "wsd": (wsd(PEAK, 500, 8_500, 1_000), [500, 9_000, TOTAL]),
    "join": (join([linear_warmup(PEAK, 500), cosine(PEAK, TOTAL)], [500]), [500]),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_finite_and_bounded(name):
    schedule, boundaries = SCHEDULES[name]
    for step in _points(*boundaries):
        lr = float(schedule(step))
        assert np.isfinite(lr), (name, step)
        assert 0.0 <= lr <= PEAK * (1 + 1e-6), (name, step, lr)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_jit_matches_eager(name):
    schedule, boundaries = SCHEDULES[name]
    jitted = jax.jit(schedule)
    for step in _points(*boundaries):
        # XLA may fuse differently under jit; float32 noise near zero is fine.
        np.testing.assert_allclose(float(jitted(step)), float(schedule(step)), rtol=1e-5, atol=1e-9)


def test_warmup_zero_starts_at_peak():
    assert float(linear_warmup(PEAK, 0)(0)) == pytest.approx(PEAK)


def test_join_passes_global_step():
    cos = cosine(PEAK, TOTAL)
    sched = join([linear_warmup(PEAK, 500), cos], [500])
    # At the boundary the cosine is evaluated at step 500, not at step 0.
    assert float(sched(500)) == pytest.approx(float(cos(500)))
    assert float(sched(499)) == pytest.approx(PEAK * 499 / 500)


def test_cosine_holds_final_value_after_end():
    sched = cosine(PEAK, TOTAL, final_fraction=0.1)
    assert float(sched(2 * TOTAL)) == pytest.approx(0.1 * PEAK)


def test_wsd_phases():
    sched = wsd(PEAK, 500, 8_500, 1_000)
    assert float(sched(250)) == pytest.approx(PEAK / 2)
    assert float(sched(5_000)) == pytest.approx(PEAK)
    assert float(sched(9_500)) == pytest.approx(PEAK / 2)
    assert float(sched(TOTAL)) == pytest.approx(0.0, abs=1e-12)


def test_shift_is_explicit():
    sched = shift(cosine(PEAK, TOTAL), 500)
    assert float(sched(500)) == pytest.approx(PEAK)
