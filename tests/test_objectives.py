"""β schedules, free bits and the capacity target (`docs/formulas.md`) against their
definitions."""

from __future__ import annotations

import math

import pytest
import torch

from vaehub.training.objectives import BetaSchedule, capacity_at, capacity_term, kl_term


def test_constant_schedules():
    assert [BetaSchedule("constant")(s) for s in (0, 10, 10**6)] == [1.0, 1.0, 1.0]
    assert BetaSchedule("constant", beta=0.4)(123) == 0.4


def test_linear_rises_from_beta_start_to_one_over_its_length():
    schedule = BetaSchedule("linear", beta_start=0.1, length=100)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(50) == pytest.approx(0.55)
    assert schedule(90) == pytest.approx(0.91)
    assert schedule(100) == schedule(5000) == 1.0
    bowman = BetaSchedule("linear", beta_start=0.0, length=4)
    assert [bowman(s) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_sigmoid_is_bowmans_logistic_curve():
    schedule = BetaSchedule("sigmoid", beta_start=0.0, length=1000)
    assert schedule(500) == pytest.approx(0.5)
    assert schedule(0) == pytest.approx(1 / (1 + math.exp(5)))
    assert schedule(750) == pytest.approx(1 / (1 + math.exp(-2.5)))
    assert schedule(1000) == 1.0
    values = [schedule(s) for s in range(0, 1000, 50)]
    assert values == sorted(values)
    shifted = BetaSchedule("sigmoid", beta_start=0.2, length=1000)
    assert shifted(500) == pytest.approx(0.2 + 0.8 * 0.5)


def test_cyclical_repeats_a_ramp_then_holds_one():
    # Fu et al.: 4 cycles over 400 steps, β rises over the first half of each cycle.
    schedule = BetaSchedule("cyclical", beta_start=0.0, length=400, cycles=4, ramp_ratio=0.5)
    assert [schedule(s) for s in (0, 25, 50, 75, 99)] == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert [schedule(s) for s in (100, 125, 150, 300, 325)] == [0.0, 0.5, 1.0, 0.0, 0.5]
    assert schedule(400) == schedule(1000) == 1.0
    with_start = BetaSchedule("cyclical", beta_start=0.1, length=100, cycles=2, ramp_ratio=0.25)
    assert with_start(50) == pytest.approx(0.1)
    assert with_start(56.25) == pytest.approx(0.1 + 0.9 * 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "exponential"}, "kind='exponential'"),
        ({"beta": -1.0}, "beta=-1.0"),
        ({"kind": "linear", "beta_start": 1.5}, "beta_start=1.5"),
        ({"kind": "linear", "length": 0}, "length=0"),
        ({"kind": "cyclical", "cycles": 0}, "cycles=0"),
        ({"kind": "cyclical", "ramp_ratio": 0.0}, "ramp_ratio=0.0"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BetaSchedule(**kwargs)


def test_kl_term_without_free_bits_is_the_batch_mean_kl():
    kl = torch.tensor([[0.5, 1.0, 0.0], [1.5, 0.0, 2.0]])
    assert kl_term(kl).item() == pytest.approx((1.5 + 3.5) / 2)


def test_free_bits_clamp_each_dimension_of_the_batch_mean():
    kl = torch.tensor([[0.5, 1.0, 0.0], [1.5, 0.0, 2.0]], requires_grad=True)
    # Batch means per dim: 1.0, 0.5, 1.0; with λ = 0.8 the middle one counts 0.8.
    term = kl_term(kl, free_bits=0.8)
    assert term.item() == pytest.approx(1.0 + 0.8 + 1.0)
    term.backward()
    # No gradient reaches a dimension held at the floor: it is not pushed to the prior.
    assert torch.equal(kl.grad, torch.tensor([[0.5, 0.0, 0.5], [0.5, 0.0, 0.5]]))
    with pytest.raises(ValueError, match="free_bits=-1"):
        kl_term(kl, free_bits=-1)
    with pytest.raises(ValueError, match="free_bits=nan"):  # NaN would drop the KL term
        kl_term(kl, free_bits=float("nan"))


def test_capacity_rises_linearly_to_its_target_then_holds():
    # C_max = 60 nats over 40 steps: 1.5 nats a step, then 60.
    assert [capacity_at(s, 60.0, 40) for s in (0, 1, 20, 40, 41, 10**6)] == [
        0.0, 1.5, 30.0, 60.0, 60.0, 60.0,
    ]
    with pytest.raises(ValueError, match="capacity=0"):
        capacity_at(3, 0.0, 10)
    with pytest.raises(ValueError, match="length=0"):
        capacity_at(3, 5.0, 0)


def test_capacity_term_is_the_weighted_distance_to_the_target():
    # KL 7 against C = 10 with γ = 2: 2·|7 − 10| = 6, and its gradient pushes KL up (−2);
    # above the target (KL 13) the same distance, pushed down (+2).
    below = torch.tensor(7.0, requires_grad=True)
    term = capacity_term(below, 10.0, 2.0)
    term.backward()
    assert (term.item(), below.grad.item()) == (6.0, -2.0)
    above = torch.tensor(13.0, requires_grad=True)
    term = capacity_term(above, 10.0, 2.0)
    term.backward()
    assert (term.item(), above.grad.item()) == (6.0, 2.0)
