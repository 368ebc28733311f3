"""`vaehub diagnose`: did a model collapse, and why — one short report.

    metrics    KL, KL per dimension, active units, MI, IW-NLL (`vaehub.evaluation.metrics`)
    rate       KL against the committed rate δ of the prior family (0 for N(0, I))
    gaps       approximation and amortisation gaps on a few examples (`vaehub.evaluation.gaps`)
    figures    KL per dimension; for a 2-d latent, He et al.'s posterior mean space and
               the true posterior against the amortised, optimal Gaussian and flow ones

and a verdict: collapsed or not, and whether the encoder (inference collapse: the
per-example optimal posterior carries information the encoder's does not, what aggressive
training and SA-VAE address) or the model (the optimal posterior itself is the prior) is
where the latent went unused. Written as `report.md`,
`diagnosis.json` and PNGs in one folder.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from vaehub.evaluation.gaps import GapSettings, amortisation_gaps, posterior_grids
from vaehub.evaluation.metrics import COLLAPSE_NATS, collapsed, evaluate_vae
from vaehub.evaluation.plots import (
    plot_kl_per_dim,
    plot_posterior_contours,
    plot_posterior_mean_space,
)
from vaehub.evaluation.posterior_grid import posterior_mean_pairs
from vaehub.utils.formatting import fixed
from vaehub.utils.safe_io import write_json, write_text


def reading_words(results: dict[str, Any]) -> str | None:
    """What the decoder reads from z, in words, where a baseline was measured beside the
    model: "the decoder reads 1.40 of the 28.10 nats it pays for (26.70 paid unread)"."""
    if "nats_read" not in results:
        return None
    return (
        f"the decoder reads {fixed(results['nats_read'], 2)} of the "
        f"{fixed(results['kl'], 2)} nats it pays for ({fixed(results['rate_unread'], 2)} "
        "paid unread)"
    )


def verdict(results: dict[str, Any], rate: float, gaps: dict[str, Any] | None) -> dict[str, Any]:
    """Collapsed or not, and a sentence on why, from the measured numbers.

    With the decoder alone measured beside the model (`nats_read`), a latent whose decoder
    reads less than `COLLAPSE_NATS` of it counts as collapsed whatever its KL, MI or active
    units: rate paid and not read carries nothing a user gets back.
    """
    excess = results["kl"] - rate
    reads = reading_words(results)
    is_collapsed = collapsed(results, rate)
    if not is_collapsed and "nats_read" in results and results["nats_read"] < COLLAPSE_NATS:
        why = (
            f"{reads}: KL {fixed(excess, 2)} nats above the committed rate, MI "
            f"{fixed(results['mi'], 2)} and {results['active_units']} active unit(s) look "
            "healthy, but the decoder scores the data no better with z than without it; "
            "train the encoder first and reset the decoder (Li et al. 2019), or hold a "
            "rate with word dropout (--objective capacity, --word_dropout)."
        )
        return {"collapsed": True, "kl_above_rate": excess, "why": why}
    if not is_collapsed:
        why = (
            f"the latent is used: {results['active_units']} active unit(s), KL "
            f"{fixed(excess, 2)} nats above the committed rate, MI {fixed(results['mi'], 2)}"
            + (f"; {reads}." if reads else ".")
        )
    elif gaps is None:
        why = "the posterior is the prior's (measure the gaps to tell model from inference)."
    elif gaps["kl_optimal"] - rate > COLLAPSE_NATS:
        why = (
            f"inference collapse: the per-example optimal posterior has KL "
            f"{fixed(gaps['kl_optimal'] - rate, 2)} nats above the rate where the encoder's "
            f"has {fixed(excess, 2)}, so the model posterior moves with x while q(z|x) does "
            "not; aggressive training or SA-VAE (--objective aggressive / sa_vae) target this."
        )
    else:
        why = (
            f"model collapse: even the per-example optimal posterior stays at the prior (KL "
            f"{fixed(gaps['kl_optimal'] - rate, 2)} nats above the rate), so the decoder has "
            "learnt to ignore z; weaken it (word dropout), keep a rate (free bits, a δ-VAE "
            "prior) or pretrain the encoder."
        )
    return {"collapsed": bool(is_collapsed), "kl_above_rate": excess, "why": why}


def committed_rate(model: nn.Module, batches: list[dict[str, Any]]) -> float:
    """δ per example on this data: the config's, or for sequential text latents, whose δ
    grows with a sentence's length, the mean over the sentences."""
    if not getattr(model, "sequential", False):
        return float(getattr(model.config, "committed_rate", 0.0) or 0.0)
    rates = [
        model.committed_rate_for(int(length) - 1)
        for batch in batches
        for length in batch["attention_mask"].sum(-1)
    ]
    return sum(rates) / len(rates)


def diagnose(
    model: nn.Module,
    batches: list[dict[str, Any]],
    output_dir: str | os.PathLike,
    name: str,
    iw_samples: int = 500,
    gap_examples: int = 32,
    gap_settings: GapSettings | None = None,
    seed: int = 0,
    show_progress: bool = False,
    baseline: nn.Module | None = None,
) -> dict[str, Any]:
    """Measure, draw and write the report for `model` on `batches`; returns the JSON dict.

    Args:
        batches: the data, as lists of dicts `model.forward` takes.
        baseline: the model's decoder trained alone (`TextLMModel`, `PixelCNNModel`): its
            exact NLL on the same data gives the nats the decoder reads from z, and the
            verdict says how much of the KL that is (needs `iw_samples`).
        gap_examples: examples the gaps (and the posterior figure) are measured on: each
            costs hundreds of SVI steps and a flow fit, so a few dozen suffice.
    """
    os.makedirs(output_dir, exist_ok=True)
    torch.manual_seed(seed)
    if baseline is not None and not iw_samples:
        raise ValueError(
            "a baseline is compared by IW-NLL and by what the decoder reads: give iw_samples "
            "> 0 with it."
        )
    results = evaluate_vae(
        model, batches, iw_samples=iw_samples or None, show_progress=show_progress,
        baseline=baseline,
    )
    rate = committed_rate(model, batches)
    gap_batches, count = [], 0
    for batch in batches:
        if count >= gap_examples:
            break
        rows = min(gap_examples - count, next(iter(batch.values())).shape[0])
        gap_batches.append({key: value[:rows] for key, value in batch.items()})
        count += rows
    gaps = amortisation_gaps(model, gap_batches, gap_settings).summary() if gap_examples else None
    figures = {}
    if "kl_per_dim" in results:
        figures["kl_per_dim"] = plot_kl_per_dim(
            results["kl_per_dim"],
            os.path.join(output_dir, "kl_per_dim.png"),
            rate / len(results["kl_per_dim"]) if rate else None,
        )
    if tuple(model.prior.event_shape) == (2,):
        figures["posterior_mean_space"] = plot_posterior_mean_space(
            {name: posterior_mean_pairs(model, batches[:4])},
            os.path.join(output_dir, "posterior_mean_space.png"),
        )
        figures["posterior_contours"] = plot_posterior_contours(
            posterior_grids(model, batches[0], examples=4, settings=gap_settings),
            os.path.join(output_dir, "posterior_contours.png"),
            title=f"{name}: true posterior and three approximations",
        )
    report = {
        "model": name,
        "posterior": getattr(model.config, "posterior", "gaussian"),
        "prior": model.config.prior,
        "committed_rate": rate,
        "metrics": {k: v for k, v in results.items() if k != "au_variance"},
        "gaps": gaps,
        "verdict": verdict(results, rate, gaps),
        "figures": {k: os.path.basename(v) for k, v in figures.items()},
    }
    write_json(os.path.join(output_dir, "diagnosis.json"), report, "the diagnosis")
    write_text(os.path.join(output_dir, "report.md"), render_report(report))
    return report


def render_report(report: dict[str, Any]) -> str:
    """The Markdown report of a `diagnose` result."""
    metrics, gaps, verdict_ = report["metrics"], report["gaps"], report["verdict"]
    state = "collapsed" if verdict_["collapsed"] else "not collapsed"
    lines = [
        f"# Diagnosis of {report['model']}: {state}",
        "",
        verdict_["why"][0].upper() + verdict_["why"][1:],
        "",
        f"Prior `{report['prior']}`, posterior `{report['posterior']}`, "
        f"{metrics['num_examples']} examples.",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| KL (nats per example) | {fixed(metrics['kl'], 3)} |",
        f"| committed rate δ | {fixed(report['committed_rate'], 3)} |",
        f"| KL − δ | {fixed(verdict_['kl_above_rate'], 3)} |",
        f"| mutual information I_q | {fixed(metrics['mi'], 3)} |",
        f"| active units | {metrics['active_units']} |",
        f"| reconstruction | {fixed(metrics['reconstruction'], 3)} |",
        f"| −ELBO | {fixed(metrics['neg_elbo'], 3)} |",
    ]
    if "nll" in metrics:
        lines.append(f"| IW-NLL (K = {metrics['iw_samples']}) | {fixed(metrics['nll'], 3)} |")
    if "nats_read" in metrics:
        lines += [
            f"| decoder-alone NLL (exact) | {fixed(metrics['baseline_nll'], 3)} |",
            f"| nats the decoder reads from z | {fixed(metrics['nats_read'], 3)} |",
            f"| KL paid but not read | {fixed(metrics['rate_unread'], 3)} |",
        ]
    if gaps is not None:
        lines += [
            "",
            f"## Where the gap log p(x) − ELBO comes from ({gaps['examples']} examples)",
            "",
            "| nats per example | value |",
            "| --- | ---: |",
            f"| log p(x) (IW, K = {gaps['iw_samples']}) | {fixed(gaps['log_px'], 3)} |",
            f"| ELBO, amortised q(z\\|x) | {fixed(gaps['elbo_amortised'], 3)} |",
            f"| ELBO, optimal q* of the family | {fixed(gaps['elbo_optimal'], 3)} |",
            f"| KL(q*‖p), the optimal posterior | {fixed(gaps['kl_optimal'], 3)} |",
            f"| approximation gap (the family) | {fixed(gaps['approximation_gap'], 3)} |",
            f"| amortisation gap (the encoder) | {fixed(gaps['amortisation_gap'], 3)} |",
        ]
        if "approximation_gap_flow" in gaps:
            flow_gap = fixed(gaps["approximation_gap_flow"], 3)
            lines.append(f"| approximation gap, {gaps['flow']} | {flow_gap} |")
    for key, title in (
        ("kl_per_dim", "KL per latent dimension"),
        ("posterior_mean_space", "Posterior mean space (He et al. Fig. 2)"),
        ("posterior_contours", "True posterior against its approximations"),
    ):
        if key in report["figures"]:
            lines += ["", f"## {title}", "", f"![{title}]({report['figures'][key]})"]
    return "\n".join(lines) + "\n"
