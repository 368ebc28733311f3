"""The amortisation gap (Cremer, Li & Duvenaud 2018): where the distance between log p(x)
and a model's ELBO comes from.

    log p(x) − ELBO(x; q_φ)
      = [log p(x) − ELBO(x; q*)]        approximation gap: the posterior family
      + [ELBO(x; q*) − ELBO(x; q_φ)]    amortisation gap: the encoder

with q_φ the encoder's posterior and q* the best posterior of the same family for x
alone: SVI on λ = (μ, scale) from q_φ until the ELBO stops rising (`optimal_parameters`).
KL(q*‖p) tells the two kinds of collapse apart (He et al.): near 0, the model posterior
itself is the prior (model collapse); well above KL(q_φ‖p), the encoder lags behind it
(inference collapse).
The same is measured for a richer family, a planar flow with its own parameters for every
example, started at q* and optimised with Adam (`optimal_flow`): its approximation gap
says how much a better family could still recover.

log p(x) is the importance-weighted bound with `iw_samples` samples drawn from q* (a
proposal close to the true posterior, so the bound is tight); each ELBO is a Monte Carlo
mean over `elbo_samples` fresh samples. Everything is per example, in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from vaehub.evaluation.metrics import check_iw_samples, log_importance_weights
from vaehub.latent import svi
from vaehub.latent.flows import FlowPosterior, LocalPlanarStep
from vaehub.latent.kl import latent_kl
from vaehub.latent.posteriors import PosteriorParameters
from vaehub.latent.priors import prior_of

# Cremer et al. use K = 5000 (with AIS besides); this default keeps a CPU run in minutes.
IW_SAMPLES = 1000
ELBO_SAMPLES = 100
OPTIMAL_MAX_STEPS = 400
OPTIMAL_ROUND = 25
OPTIMAL_TOLERANCE = 0.01
FLOW_LENGTH = 8
FLOW_STEPS = 300
FLOW_LEARNING_RATE = 0.01


@dataclass
class GapSettings:
    """How hard each quantity is worked for (defaults: see the module's constants)."""

    iw_samples: int = IW_SAMPLES
    elbo_samples: int = ELBO_SAMPLES
    optimal_max_steps: int = OPTIMAL_MAX_STEPS
    flow: bool = True
    flow_length: int = FLOW_LENGTH
    flow_steps: int = FLOW_STEPS
    max_units: int = 65536

    def __post_init__(self) -> None:
        # The gaps' log p(x) is an IW bound too: its K is bounded as `evaluate`'s is.
        check_iw_samples(self.iw_samples, "gap_iw_samples")


@dataclass
class GapResult:
    """Per-example values `(examples,)` in nats, and what they came from."""

    log_px: Tensor
    elbo_amortised: Tensor
    elbo_optimal: Tensor
    elbo_optimal_flow: Tensor | None
    kl_optimal: Tensor
    optimal_steps: int
    settings: GapSettings = field(default_factory=GapSettings)

    @property
    def approximation_gap(self) -> Tensor:
        return self.log_px - self.elbo_optimal

    @property
    def amortisation_gap(self) -> Tensor:
        return self.elbo_optimal - self.elbo_amortised

    def summary(self) -> dict[str, Any]:
        """Means over the examples, as a JSON-ready dict."""
        out = {
            "examples": int(self.log_px.numel()),
            "log_px": self.log_px.mean().item(),
            "elbo_amortised": self.elbo_amortised.mean().item(),
            "elbo_optimal": self.elbo_optimal.mean().item(),
            "kl_optimal": self.kl_optimal.mean().item(),
            "gap": (self.log_px - self.elbo_amortised).mean().item(),
            "approximation_gap": self.approximation_gap.mean().item(),
            "amortisation_gap": self.amortisation_gap.mean().item(),
            "iw_samples": self.settings.iw_samples,
            "elbo_samples": self.settings.elbo_samples,
            "optimal_svi_steps": self.optimal_steps,
        }
        if self.elbo_optimal_flow is not None:
            out["elbo_optimal_flow"] = self.elbo_optimal_flow.mean().item()
            out["approximation_gap_flow"] = (self.log_px - self.elbo_optimal_flow).mean().item()
            out["flow"] = f"planar, {self.settings.flow_length} steps per example"
        return out


def elbo(
    model: nn.Module, batch: dict[str, Tensor], posterior: Any, samples: int, max_units: int
) -> Tensor:
    """E_q[log p(x|z) + log p(z) − log q(z|x)] per example `(batch,)`, from `samples` draws."""
    return log_importance_weights(model, batch, posterior, samples, max_units).mean(0)


def optimal_parameters(
    model: nn.Module,
    batch: dict[str, Tensor],
    parameters: PosteriorParameters,
    max_steps: int = OPTIMAL_MAX_STEPS,
    samples: int = ELBO_SAMPLES,
    max_units: int = 65536,
) -> tuple[PosteriorParameters, int]:
    """λ* of the model's family for each example: SVI from the encoder's λ in rounds of
    `OPTIMAL_ROUND` steps, halving the step size whenever a round raises the mean ELBO by
    less than `OPTIMAL_TOLERANCE` nats, until it has been halved 3 times or `max_steps`.

    Each example keeps the λ of its best round (by an ELBO estimate of `samples` draws).
    Returns the parameters and the SVI steps taken.
    """
    current = parameters.detached()
    best, best_elbo = current, _estimate(model, batch, current, samples, max_units)
    learning_rate, halvings, steps = svi.DEFAULT_LEARNING_RATE, 0, 0
    while steps < max_steps and halvings < 3:
        current = svi.refine(model, batch, current, OPTIMAL_ROUND, learning_rate)
        steps += OPTIMAL_ROUND
        value = _estimate(model, batch, current, samples, max_units)
        if (value - best_elbo).clamp(min=0).mean() < OPTIMAL_TOLERANCE:
            learning_rate, halvings = learning_rate / 2, halvings + 1
        better = value > best_elbo
        best = _choose(better, current, best)
        best_elbo = torch.where(better, value, best_elbo)
    return best, steps


def _estimate(model, batch, parameters, samples, max_units) -> Tensor:
    return elbo(model, batch, model.posterior_from(parameters), samples, max_units)


def _choose(
    take: Tensor, new: PosteriorParameters, old: PosteriorParameters
) -> PosteriorParameters:
    shape = (-1,) + (1,) * (new.mean.dim() - 1)
    mask = take.view(shape)
    return new.with_local(
        torch.where(mask, new.mean, old.mean), torch.where(mask, new.scale, old.scale)
    )


def optimal_flow(
    model: nn.Module,
    batch: dict[str, Tensor],
    parameters: PosteriorParameters,
    length: int = FLOW_LENGTH,
    steps: int = FLOW_STEPS,
    learning_rate: float = FLOW_LEARNING_RATE,
    samples: int = 8,
) -> FlowPosterior:
    """A planar flow posterior with its own parameters for each example, on the Gaussian
    of the model's family, started at `parameters` (q*) and optimised with Adam on the
    ELBO (`samples` draws per step), the model's weights fixed. The step size decays to 0
    (cosine): with a Monte Carlo gradient, a constant one leaves the flow wandering around
    its optimum, and a flow started at the identity could end worse than its start."""
    prior = model.prior
    mean = parameters.mean.detach().clone().requires_grad_()
    scale = parameters.scale.detach().clone().requires_grad_()
    shape = tuple(mean.shape[:-1])
    flow_steps = nn.ModuleList(
        [LocalPlanarStep(shape, mean.shape[-1], mean.dtype) for _ in range(length)]
    ).to(mean.device)
    optimizer = torch.optim.Adam([mean, scale, *flow_steps.parameters()], lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, steps))

    def posterior() -> FlowPosterior:
        base = prior.posterior(mean, scale, mask=parameters.mask)
        return FlowPosterior(base, list(flow_steps), mean.new_zeros(*shape, 1))

    batch_prior = prior_of(model, batch)
    with torch.enable_grad(), svi.frozen(model):
        for _ in range(steps):
            q = posterior()
            z, log_q = q.rsample_and_log_prob((samples,))
            kl, _ = latent_kl(q, batch_prior, z, log_q)
            loss = -(model.log_likelihood(**batch, z=z).mean(0) - kl).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    with torch.no_grad():
        final = posterior()
        # Detached copies: the returned posterior carries no optimiser graph.
        base = prior.posterior(mean.detach(), scale.detach(), mask=parameters.mask)
        return FlowPosterior(base, final.steps, final.context)


def amortisation_gaps(
    model: nn.Module, batches: list[dict[str, Tensor]], settings: GapSettings | None = None
) -> GapResult:
    """Per-example log p(x), ELBOs and gaps over `batches` (dicts as `forward` takes them)."""
    settings = settings or GapSettings()
    was_training = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {
        "log_px": [], "amortised": [], "optimal": [], "flow": [], "kl_optimal": [],
    }  # fmt: skip
    steps_taken = 0
    try:
        for raw_batch in batches:
            batch = model.checked_batch(**raw_batch)
            with torch.no_grad():
                initial = model.posterior_parameters(**batch)
            amortised = model.posterior_from(initial)
            k = settings.elbo_samples
            parts["amortised"].append(elbo(model, batch, amortised, k, settings.max_units))
            best, steps_taken = optimal_parameters(
                model, batch, initial, settings.optimal_max_steps, k, settings.max_units
            )
            optimal = model.posterior_from(best)
            parts["optimal"].append(elbo(model, batch, optimal, k, settings.max_units))
            with torch.no_grad():
                kl, _ = latent_kl(optimal, prior_of(model, batch), samples=k)
            parts["kl_optimal"].append(kl)
            weights = log_importance_weights(
                model, batch, optimal, settings.iw_samples, settings.max_units
            )
            log_px = torch.logsumexp(weights, 0) - math.log(settings.iw_samples)
            if settings.flow:
                flow = optimal_flow(model, batch, best, settings.flow_length, settings.flow_steps)
                # The flow family holds q* (every step the identity): its optimum is at
                # least q*'s ELBO, whatever the optimiser reached.
                flow_elbo = elbo(model, batch, flow, k, settings.max_units)
                parts["flow"].append(torch.maximum(flow_elbo, parts["optimal"][-1]))
                flow_weights = log_importance_weights(
                    model, batch, flow, settings.iw_samples, settings.max_units
                )
                flow_px = torch.logsumexp(flow_weights, 0) - math.log(settings.iw_samples)
                # Both are lower bounds on log p(x): keep the tighter for each example.
                log_px = torch.maximum(log_px, flow_px)
            parts["log_px"].append(log_px)
    finally:
        model.train(was_training)
    return GapResult(
        log_px=torch.cat(parts["log_px"]).double(),
        elbo_amortised=torch.cat(parts["amortised"]).double(),
        elbo_optimal=torch.cat(parts["optimal"]).double(),
        elbo_optimal_flow=torch.cat(parts["flow"]).double() if parts["flow"] else None,
        kl_optimal=torch.cat(parts["kl_optimal"]).double(),
        optimal_steps=steps_taken,
        settings=settings,
    )


def _rows(batch: dict[str, Tensor], count: int) -> dict[str, Tensor]:
    return {key: value[:count] for key, value in batch.items()}


@torch.no_grad()
def posterior_grids(
    model: nn.Module,
    batch: dict[str, Tensor],
    examples: int = 4,
    points: int = 61,
    settings: GapSettings | None = None,
) -> list[dict[str, Any]]:
    """For a 2-d latent: the true posterior p(z|x) and the amortised, optimal Gaussian and
    optimal flow posteriors, each on a grid around the examples' posterior, for the first
    `examples` rows of `batch` (Cremer et al.'s figure).

    Returns:
        per example: `x`, `y` `(points,)` axes and densities `(points, points)` under
        `true`, `amortised`, `optimal` and (with `settings.flow`) `flow`.
    """
    settings = settings or GapSettings()
    if tuple(model.prior.event_shape) != (2,):
        raise ValueError(
            f"posterior grids need a 2-d latent; this model's is {tuple(model.prior.event_shape)}."
        )
    was_training = model.training
    model.eval()
    try:
        batch = _rows(model.checked_batch(**batch), examples)
        initial = model.posterior_parameters(**batch)
        best, _ = optimal_parameters(model, batch, initial, settings.optimal_max_steps)
        posteriors = {
            "amortised": model.posterior_from(initial),
            "optimal": model.posterior_from(best),
        }
        if settings.flow:
            posteriors["flow"] = optimal_flow(
                model, batch, best, settings.flow_length, settings.flow_steps
            )
        prior = model.prior
        grids = []
        for i in range(batch[next(iter(batch))].shape[0]):
            one = {k: v[i : i + 1] for k, v in batch.items()}
            centre = posteriors["optimal"].mean[i]
            spread = torch.stack([p.mean[i] for p in posteriors.values()]) - centre
            std = _std(posteriors["optimal"])[i].max()
            half = float(4 * std.clamp(min=MIN_GRID_STD) + spread.abs().max())
            axis_x = torch.linspace(-half, half, points) + centre[0].item()
            axis_y = torch.linspace(-half, half, points) + centre[1].item()
            grid = torch.cartesian_prod(axis_x, axis_y).to(centre)  # (points², 2)
            log_joint = _grid_log_joint(model, one, grid, prior, settings.max_units)
            densities = {"true": torch.softmax(log_joint, 0)}
            for name, posterior in posteriors.items():
                log_q = posterior.log_prob(grid.unsqueeze(1))[:, i]
                densities[name] = torch.softmax(log_q, 0)
            grids.append(
                {
                    "x": axis_x.tolist(),
                    "y": axis_y.tolist(),
                    **{n: d.view(points, points).T.tolist() for n, d in densities.items()},
                }
            )
        return grids
    finally:
        model.train(was_training)


# The grid spans ±4σ of q* (and the other posteriors' means); narrower is not resolved.
MIN_GRID_STD = 0.05


def _std(posterior: Any) -> Tensor:
    """σ of a Gaussian posterior, or of a flow's Gaussian base."""
    return posterior.std if hasattr(posterior, "std") else posterior.base.std


def _grid_log_joint(
    model: nn.Module, batch: dict[str, Tensor], grid: Tensor, prior: Any, max_units: int
) -> Tensor:
    """log p(x|z) + log p(z) at every grid point `(points,)` for a batch of one example."""
    units = int(model.units_per_example(**batch).sum())
    per_pass = max(1, max_units // max(1, units))
    parts = []
    for start in range(0, grid.shape[0], per_pass):
        z = grid[start : start + per_pass].unsqueeze(1)  # (points, 1, 2)
        parts.append(model.log_likelihood(**batch, z=z)[:, 0] + prior.log_prob(z[:, 0]))
    return torch.cat(parts)
