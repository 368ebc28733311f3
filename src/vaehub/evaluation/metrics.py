"""The numbers that decide whether a VAE collapsed (He et al. 2019's evaluation protocol).

Every metric needs only three things from a model, so the text VAE and the image δ-VAE
share them unchanged, whatever their posterior family:

- `model.encode(**batch)` → the posterior q(z|x), a distribution with `sample`,
  `log_prob`, `mean` and `sample_and_log_prob` (`vaehub.latent.posteriors`); with
  `refine_steps`, `model.posterior_parameters(**batch)` and `model.posterior_from(λ)`,
  between which SVI refines λ (`vaehub.latent.svi`);
- `model.prior` → p(z), with `log_prob` (or `model.prior_for(**batch)`, where the prior
  depends on the batch: sequential latents as long as each sentence); KL comes from
  `vaehub.latent.kl`, in closed form or estimated with `kl_samples` samples;
- `model.log_likelihood(**batch, z=z)` → log p(x|z) per example, for z of shape
  `(samples, batch, *latent)`;

plus `model.units_per_example(**batch)`, the tokens or pixel values each example counts,
and `model.nll_unit` (`"token"` for perplexity, `"dim"` for bits/dim of discrete pixel
values, `"example"` for a density of continuous data, where neither is meaningful). A model
whose `has_exact_marginal` is true also gives its exact `model.log_marginal(**batch)`,
measured beside the IW bound as `exact_nll` (the linear VAE's log N(x; μ, WWᵀ + σ²I)).

A batch is a dict of tensors as the model's `forward` takes them (`input_ids` and
`attention_mask` for text).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from vaehub.latent import svi
from vaehub.latent.kl import latent_kl
from vaehub.latent.priors import prior_of
from vaehub.latent.refinement import Refinement

AU_THRESHOLD = 0.01
# KL within this many nats of the committed rate (or of 0), with MI below it too, or no
# active unit at all: the latent carries (almost) nothing beyond δ.
COLLAPSE_NATS = 0.1
# Samples of the Monte Carlo KL of a posterior without a closed form, at evaluation.
KL_SAMPLES = 16


# The largest K the IW-NLL is measured with: ten times the largest in the literature this
# package reproduces (Burda et al.'s 5000). Each example costs K decoder passes, so K = 10^7
# on PTB's test set is weeks of compute, with no progress to see.
MAX_IW_SAMPLES = 50_000


def check_iw_samples(iw_samples: int, what: str = "iw_samples") -> None:
    """Refuse a K that is not a whole number in [1, MAX_IW_SAMPLES], saying the cost."""
    if isinstance(iw_samples, bool) or not isinstance(iw_samples, int) or iw_samples < 1:
        raise ValueError(f"{what} must be a positive integer, got {iw_samples!r}.")
    if iw_samples > MAX_IW_SAMPLES:
        raise ValueError(
            f"{what}={iw_samples:,} is above the limit of {MAX_IW_SAMPLES:,}: the IW-NLL runs "
            f"the decoder K times per example, and K = {iw_samples:,} would take orders of "
            "magnitude longer than the bound gains (He et al. use K = 500; Burda et al. "
            "5000). Give a K within the limit."
        )


def _check_samples(num_samples: int) -> None:
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")


@torch.no_grad()
def log_importance_weights(
    model: nn.Module,
    batch: dict[str, Tensor],
    posterior: Any,
    num_samples: int,
    max_units: int = 4096,
) -> Tensor:
    """log p(x|z_k) + log p(z_k) − log q(z_k|x) for K samples z_k ~ q(z|x).

    The K samples of all examples of the batch go through the decoder together, in chunks
    of at most `max_units` scored tokens or pixels (samples × the batch's units), so memory
    is bounded by `max_units` whatever K is. Their mean is the ELBO, their log-mean-exp
    the IW bound.

    Returns:
        `(K, batch)` in nats.
    """
    _check_samples(num_samples)
    prior = prior_of(model, batch)
    batch_units = int(model.units_per_example(**batch).sum())
    per_chunk = max(1, max_units // max(1, batch_units))
    log_weights = []
    for start in range(0, num_samples, per_chunk):
        k = min(per_chunk, num_samples - start)
        z, log_q = posterior.sample_and_log_prob((k,))
        log_weights.append(model.log_likelihood(**batch, z=z) + prior.log_prob(z) - log_q)
    return torch.cat(log_weights)


@torch.no_grad()
def importance_weighted_log_likelihood(
    model: nn.Module,
    batch: dict[str, Tensor],
    num_samples: int = 500,
    max_units: int = 4096,
    posterior: Any = None,
) -> Tensor:
    """log p(x) ≈ logsumexp_k [log p(x|z_k) + log p(z_k) − log q(z_k|x)] − log K, z_k ~ q(z|x),
    with memory bounded by `max_units` whatever K is (`log_importance_weights`).

    Args:
        posterior: q(z|x) to sample from (a refined one, say); the encoder's by default.
    Returns:
        `(batch,)` in nats.
    """
    _check_samples(num_samples)
    if posterior is None:
        posterior = model.encode(**batch)
    log_weights = log_importance_weights(model, batch, posterior, num_samples, max_units)
    return torch.logsumexp(log_weights, dim=0) - math.log(num_samples)


@torch.no_grad()
def mutual_information_terms(posterior: Any) -> tuple[Tensor, Tensor]:
    """He et al.'s estimator of I_q on one batch of N examples, one z_i ~ q(z|x_i) each.

    I_q ≈ E_x E_q(z|x)[log q(z|x)] − E_x E_q(z|x)[log q(z)] with the aggregate posterior
    log q(z_i) ≈ logsumexp_n log q(z_i | x_n) − log N. The first term is estimated at the
    same samples, log q(z_i | x_i), rather than by the analytic entropy He et al. use: the
    same expectation with less variance, and exactly 0 when every posterior is the same.

    Returns:
        the batch means of log q(z_i | x_i) and of log q(z_i), as 0-d tensors.
    """
    z = posterior.sample()  # (N, *latent)
    n = z.shape[0]
    # log q(z_i | x_n) for every pair: the posterior's batch broadcasts against z[:, None].
    pairwise = posterior.log_prob(z.unsqueeze(1))  # (N, N)
    mask = getattr(posterior, "mask", None)
    if mask is None:
        log_aggregate = torch.logsumexp(pairwise, dim=1) - math.log(n)
    else:
        # Sequential latents of varying length live in spaces of different dimension:
        # the aggregate posterior of z_i is taken over the examples of z_i's length.
        lengths = mask.flatten(1).sum(-1)
        same = lengths[:, None] == lengths[None, :]
        pairwise_same = pairwise.masked_fill(~same, -math.inf)
        log_aggregate = torch.logsumexp(pairwise_same, dim=1) - same.sum(1).log()
    return pairwise.diagonal().mean(), log_aggregate.mean()


@torch.no_grad()
def evaluate_vae(
    model: nn.Module,
    batches: Iterable[dict[str, Tensor]],
    iw_samples: int | None = None,
    max_units: int = 4096,
    active_unit_threshold: float = AU_THRESHOLD,
    show_progress: bool = False,
    total: int | None = None,
    refine_steps: int = 0,
    kl_samples: int = KL_SAMPLES,
    reconstruction: bool = True,
    baseline: nn.Module | None = None,
    refine_lr: float = svi.DEFAULT_LEARNING_RATE,
    refine_momentum: float = svi.DEFAULT_MOMENTUM,
    refine_max_grad_norm: float = svi.DEFAULT_MAX_GRAD_NORM,
    refinement: Refinement | None = None,
) -> dict[str, Any]:
    """Every collapse metric over a dataset, in one pass.

    Args:
        batches: dicts of tensors, as `model.forward` takes them.
        refinement: with `steps` K > 0, evaluate on the posterior refined by K SVI steps
            from the encoder's (Kim et al. 2018, Algorithm 1): every metric then describes
            q(z|x; λ_K). An SA-VAE is measured with the refinement it was trained with.
        refine_steps, refine_lr, refine_momentum, refine_max_grad_norm: the same four
            settings one by one (with Kim et al.'s step size, momentum and clipping by
            default), where `refinement` is not given.
        kl_samples: samples of the Monte Carlo KL for a posterior with no closed form.
        reconstruction: also score log p(x|z) (a decoder pass per batch). `False` with
            `iw_samples=None` runs the encoder only: KL, MI and AU, at a third of the cost.
        baseline: the VAE's decoder trained alone (`TextLMModel`, `PixelCNNModel`): its
            exact NLL on the same batches is added as `baseline_nll`, with `delta_nll`,
            `nats_read` and `rate_unread` (`compare_to_baseline`); needs `iw_samples`.
        show_progress: a progress bar counting examples (with a rate, and with a total and
            a time left when `total` examples are announced).
        iw_samples: K for the importance-weighted NLL; `None` skips it (it is costly).
        max_units: scored tokens or pixels (samples × the batch's) per decoder pass of
            the IW-NLL; bounds its memory.
    Returns:
        a dict with, per example in nats: `reconstruction` (one z ~ q), `kl`, `neg_elbo`;
        `mi` (nats), `active_units` and `au_variance` (per latent dimension), `kl_per_dim`;
        with `iw_samples`: `nll` and `ppl` (text) or `bits_per_dim` (images);
        `exact_nll` for a model with an exact marginal (the linear VAE).
        `kl_per_dim` only where the KL has a closed form; `refine_steps` when K > 0.
        For a model without a latent (`TextLMModel`, `PixelCNNModel`), what
        `evaluate_exact` gives.
    """
    if refinement is None:
        refinement = Refinement(refine_steps, refine_lr, refine_momentum, refine_max_grad_norm)
    if baseline is not None:
        if iw_samples is None:
            raise ValueError("a baseline compares NLLs: give iw_samples too.")
        check_baseline(model, baseline)
        batches = list(batches)
        results = evaluate_vae(
            model, batches, iw_samples, max_units, active_unit_threshold, show_progress,
            total, kl_samples=kl_samples, reconstruction=reconstruction,
            refinement=refinement,
        )  # fmt: skip
        return compare_to_baseline(results, evaluate_exact(baseline, batches))
    if not getattr(model, "has_latent", True):
        if refinement.steps:
            raise ValueError(
                f"refine_steps={refinement.steps}: {type(model).__name__} has no latent."
            )
        return evaluate_exact(model, batches, show_progress, total)
    if iw_samples is not None:
        check_iw_samples(iw_samples)
    _check_samples(kl_samples)
    was_training = model.training
    model.eval()
    totals = {"reconstruction": 0.0, "kl": 0.0, "nll": 0.0, "units": 0.0, "exact_nll": 0.0}
    exact = bool(getattr(model, "has_exact_marginal", False))
    kl_per_dim = None
    mi_terms, mi_weights, means = [], [], []
    count = 0
    unit = _unit_name(model)
    progress = tqdm(
        total=total,
        desc="evaluating" + (f" (IW-NLL, K={iw_samples})" if iw_samples else ""),
        unit=unit,
        disable=not show_progress,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        for batch in batches:
            posterior = posterior_of(model, batch, refinement)
            z = posterior.sample()
            prior = prior_of(model, batch)
            kl, kl_dims = latent_kl(posterior, prior, samples=kl_samples)
            n = z.shape[0]
            if reconstruction:
                nll = -model.log_likelihood(**batch, z=z.unsqueeze(0))[0]
                totals["reconstruction"] += nll.sum().item()
            totals["kl"] += kl.sum().item()
            if kl_dims is not None:
                kl_per_dim = kl_dims.sum(0) + (0 if kl_per_dim is None else kl_per_dim)
            totals["units"] += model.units_per_example(**batch).sum().item()
            mi_terms.append(torch.stack(mutual_information_terms(posterior)))
            mi_weights.append(n)
            means.append(posterior_mean_units(posterior))
            if iw_samples is not None:
                log_px = importance_weighted_log_likelihood(
                    model, batch, iw_samples, max_units, posterior
                )
                totals["nll"] += -log_px.sum().item()
            if exact:
                totals["exact_nll"] -= model.log_marginal(**batch).double().sum().item()
            count += n
            progress.update(n)
    finally:
        progress.close()
        model.train(was_training)
    if count == 0:
        raise ValueError("cannot evaluate on an empty dataset.")

    weights = torch.tensor(mi_weights, dtype=torch.float64)
    terms = torch.stack(mi_terms).double()
    mutual_information = ((terms[:, 0] - terms[:, 1]) * weights).sum() / weights.sum()
    variance = active_unit_variance(torch.cat(means))
    results: dict[str, Any] = {
        "kl": totals["kl"] / count,
        "mi": mutual_information.item(),
        "active_units": int((variance > active_unit_threshold).sum()),
        "au_variance": variance.tolist(),
        "num_examples": count,
    }
    if reconstruction:
        results["reconstruction"] = totals["reconstruction"] / count
        results["neg_elbo"] = (totals["reconstruction"] + totals["kl"]) / count
    if kl_per_dim is not None:
        results["kl_per_dim"] = (kl_per_dim / count).tolist()
    if refinement.steps:
        results.update(refinement.record())
    if exact:
        results["exact_nll"] = totals["exact_nll"] / count
    if iw_samples is not None:
        results["nll"] = totals["nll"] / count
        results["iw_samples"] = iw_samples
        if model.nll_unit == "token":
            results["ppl"] = perplexity(totals["nll"], totals["units"])
        elif model.nll_unit == "dim":
            results["bits_per_dim"] = bits_per_dim(totals["nll"] / count, totals["units"] / count)
    return results


def _unit_name(model: nn.Module) -> str:
    """What one example is called in a progress bar."""
    name = getattr(model, "main_input_name", "")
    return {"pixel_values": "image", "inputs": "example"}.get(name, "sentence")


def evaluate_exact(
    model: nn.Module,
    batches: Iterable[dict[str, Tensor]],
    show_progress: bool = False,
    total: int | None = None,
) -> dict[str, Any]:
    """The exact NLL of a model without a latent (He et al. 2019's LSTM-LM, PixelCNN) on a dataset.

    Returns:
        `nll` (nats per example, exact: `exact` is True) with `ppl` (text) or
        `bits_per_dim` (images); `reconstruction` and `neg_elbo` equal to it, and `kl`,
        `mi` and `active_units` 0, so a baseline's row reads like a VAE's.
    """
    was_training = model.training
    model.eval()
    nll = units = 0.0
    count = 0
    unit = _unit_name(model)
    progress = tqdm(
        total=total, desc="evaluating (exact NLL)", unit=unit, disable=not show_progress,
        leave=False, dynamic_ncols=True,
    )  # fmt: skip
    try:
        with torch.no_grad():
            for batch in batches:
                log_px = model.log_likelihood(**batch)
                nll -= log_px.double().sum().item()
                units += model.units_per_example(**batch).sum().item()
                count += log_px.shape[0]
                progress.update(log_px.shape[0])
    finally:
        progress.close()
        model.train(was_training)
    if count == 0:
        raise ValueError("cannot evaluate on an empty dataset.")
    results: dict[str, Any] = {
        "nll": nll / count, "reconstruction": nll / count, "neg_elbo": nll / count,
        "kl": 0.0, "mi": 0.0, "active_units": 0, "num_examples": count, "exact": True,
    }  # fmt: skip
    if model.nll_unit == "token":
        results["ppl"] = perplexity(nll, units)
    elif model.nll_unit == "dim":
        results["bits_per_dim"] = bits_per_dim(nll / count, units / count)
    return results


# What a model and its baseline must share for their NLLs to be of the same data.
INPUT_FIELDS = ("vocab_size", "max_sequence_length", "image_size", "num_channels",
                "output_distribution")  # fmt: skip


def check_baseline(model: nn.Module, baseline: nn.Module) -> None:
    """Refuse a baseline that is not a decoder trained alone, or that reads the data
    differently from the model (other image sizes, another vocabulary or tokenizer): its
    NLL would be of other data, and ΔNLL meaningless."""
    if getattr(baseline, "has_latent", True):
        raise ValueError(
            f"the baseline is a {baseline.config.model_type} model: give a text_lm or "
            "pixelcnn model, the decoder trained alone."
        )
    differ = [
        f"{field} {getattr(model.config, field)!r} vs {getattr(baseline.config, field)!r}"
        for field in INPUT_FIELDS
        if getattr(model.config, field, None) != getattr(baseline.config, field, None)
    ]
    tokenizers = getattr(model, "tokenizer", None), getattr(baseline, "tokenizer", None)
    if None not in tokenizers and tokenizers[0].get_vocab() != tokenizers[1].get_vocab():
        differ.append("the tokenizers' vocabularies")
    if differ:
        raise ValueError(
            "the baseline does not read the data as the model does: "
            + "; ".join(differ)
            + ". Train the baseline on the same data (or start the VAE from it)."
        )


def compare_to_baseline(results: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """A VAE's results with the exact NLL of its decoder alone beside them:
    `baseline_nll` and `delta_nll` = IW-NLL − baseline NLL (nats per example; ≥ 0 up to
    noise for a VAE that uses its latent at no cost in likelihood), and where the results
    hold the reconstruction term, `nats_read` and `rate_unread` (`latent_use`).

    Args:
        results: `evaluate_vae`'s, with `nll` (evaluated with `iw_samples`).
        baseline: `evaluate_exact`'s (or `evaluate_vae`'s of the baseline) on the same data.
    """
    for name, record in (("results", results), ("baseline", baseline)):
        if "nll" not in record:
            raise ValueError(f"{name} hold no nll: evaluate the VAE with iw_samples.")
    if results.get("num_examples") != baseline.get("num_examples"):
        raise ValueError(
            f"the VAE was evaluated on {results.get('num_examples')} examples and the "
            f"baseline on {baseline.get('num_examples')}: evaluate both on the same data."
        )
    compared = {
        **results,
        "baseline_nll": baseline["nll"],
        "delta_nll": results["nll"] - baseline["nll"],
    }
    if "reconstruction" in results:
        compared.update(latent_use(baseline["nll"], results["reconstruction"], results["kl"]))
    return compared


def latent_use(baseline_nll: float, reconstruction: float, kl: float) -> dict[str, float]:
    """How much of the rate the decoder reads (Alemi et al. 2018; `docs/formulas.md`).

    The decoder alone's exact NLL bounds the data entropy H from above, and H − D ≤ I(x; z)
    ≤ R, so the nats a decoder saves by reading z are estimated by

        nats_read   = NLL_baseline − D       (D = E_q[−log p(x|z)], the reconstruction term)
        rate_unread = R − nats_read          (R = KL(q(z|x) ‖ p(z)), paid but not read)

    Args:
        baseline_nll, reconstruction, kl: nats per example, averaged over the same data.
    Returns:
        `{"nats_read", "rate_unread"}`; ≈ 0 nats read is a collapsed latent whatever the
        KL, MI or active units say.
    """
    nats_read = baseline_nll - reconstruction
    return {"nats_read": nats_read, "rate_unread": kl - nats_read}


def posterior_of(
    model: nn.Module, batch: dict[str, Tensor], refinement: Refinement | None = None
) -> Any:
    """q(z|x) for a batch: the encoder's, or refined as `refinement` says."""
    if refinement is None or not refinement.steps:
        return model.encode(**batch)
    parameters = svi.refine_with(model, batch, model.posterior_parameters(**batch), refinement)
    return model.posterior_from(parameters)


def posterior_mean_units(posterior: Any) -> Tensor:
    """E_q(z|x)[z] as rows of the units whose spread AU measures.

    A latent vector or a fixed-size latent map gives one row `(batch, dims)` per example.
    A sequence of latents of varying length (the text δ-VAE) has no fixed set of
    positions, so each latent channel is a unit and every valid position of every
    sentence is a row `(valid positions, d)`: a channel counts as active when its
    posterior mean moves with the input anywhere in the sequence.
    """
    mask = getattr(posterior, "mask", None)
    if mask is None:
        return posterior.mean.flatten(1)
    valid = mask.squeeze(-1) > 0  # (batch, n)
    return posterior.mean[valid]  # (valid positions, d)


def active_unit_variance(posterior_means: Tensor) -> Tensor:
    """Cov_x(E_q(z|x)[z_k]) per latent dimension from `(examples, dims)` posterior means.

    A dimension is active when this exceeds 0.01 (Burda et al.; He et al.).
    """
    if posterior_means.shape[0] < 2:
        raise ValueError("active units need the posterior means of at least 2 examples.")
    return posterior_means.double().var(dim=0, unbiased=True)


def perplexity(total_nll: float, total_tokens: float) -> float:
    """exp(Σ NLL / Σ tokens), each sentence's tokens counting its `</s>`."""
    if total_tokens <= 0:
        raise ValueError(f"perplexity needs a positive token count, got {total_tokens}.")
    return math.exp(total_nll / total_tokens)


def bits_per_dim(nll: float, dims: float) -> float:
    """NLL (nats per example) / (D · ln 2) for D pixel values per example."""
    if dims <= 0:
        raise ValueError(f"bits/dim needs a positive number of dimensions, got {dims}.")
    return nll / (dims * math.log(2))


def collapsed(results: dict[str, Any], rate: float = 0.0) -> bool:
    """The one rule vaehub calls a posterior collapsed by (`diagnose`, the demo, the app):
    no active unit, or KL within `COLLAPSE_NATS` of the committed `rate` with MI below it.

    Args:
        results: measured `kl`, `mi` and `active_units` (as `evaluate_vae` returns them).
        rate: the KL the prior commits to whatever the encoder does (0 for N(0, I); a
            δ-VAE's committed rate otherwise).
    """
    return results["active_units"] == 0 or (
        results["kl"] - rate < COLLAPSE_NATS and results["mi"] < COLLAPSE_NATS
    )
