"""The true model posterior p_θ(z|x) of a 2-d latent, approximated on a grid.

    p_θ(z|x) ∝ p_θ(x|z) p(z),  evaluated at every point of a square grid and normalised.

He et al. 2019 compare its mean with the mean of the amortised q_φ(z|x): points off the
diagonal show inference lagging behind the model.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn


def latent_grid(limit: float = 5.0, points: int = 41) -> Tensor:
    """`(points², 2)`: the points of [−limit, limit]², row by row."""
    if points < 2 or limit <= 0:
        raise ValueError(f"need points >= 2 and limit > 0, got points={points}, limit={limit}.")
    axis = torch.linspace(-limit, limit, points)
    return torch.cartesian_prod(axis, axis)


@torch.no_grad()
def model_posterior_mean(
    model: nn.Module, batch: dict[str, Tensor], grid: Tensor, max_units: int = 65536
) -> Tensor:
    """E_{p_θ(z|x)}[z] for each example of a batch, by summing over the grid.

    Args:
        batch: a batch as `model.forward` takes it; the model's latent must be 2-d.
        grid: `(points, 2)` from `latent_grid`.
        max_units: tokens or pixels per decoder pass; bounds memory.
    Returns:
        `(batch, 2)`.
    """
    prior = model.prior
    if tuple(prior.event_shape) != (2,):
        raise ValueError(
            f"the grid posterior needs a 2-d latent, this model's is {tuple(prior.event_shape)}."
        )
    grid = grid.to(next(model.parameters()))
    batch_size = int(model.units_per_example(**batch).shape[0])
    units = int(model.units_per_example(**batch).sum())
    per_pass = max(1, max_units // max(1, units))
    log_joint = []
    for start in range(0, grid.shape[0], per_pass):
        points = grid[start : start + per_pass]
        z = points.unsqueeze(1).expand(-1, batch_size, -1)
        log_joint.append(model.log_likelihood(**batch, z=z) + prior.log_prob(points)[:, None])
    weights = torch.softmax(torch.cat(log_joint), dim=0)  # (points, batch)
    return weights.T @ grid


def posterior_mean_pairs(
    model: nn.Module, batches: Iterable[dict[str, Tensor]], grid: Tensor | None = None
) -> tuple[list[list[float]], list[list[float]]]:
    """He et al.'s posterior mean space for a 2-d latent: for every example, the mean of
    the amortised q(z|x) and the mean of the model posterior p(z|x) (on `grid`).

    Returns:
        the inference means and the model-posterior means, each `(examples, 2)` as lists.
    """
    grid = latent_grid(limit=4.5, points=31) if grid is None else grid
    inference, true_posterior = [], []
    for batch in batches:
        with torch.no_grad():
            inference.append(model.encode(**batch).mean)
        true_posterior.append(model_posterior_mean(model, batch, grid))
    return torch.cat(inference).tolist(), torch.cat(true_posterior).tolist()
