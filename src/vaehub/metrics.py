"""Evaluation of a trained VAE on a dataset (SPEC §3)."""

from __future__ import annotations

import torch
from datasets import Dataset
from torch import nn

from vaehub.data import iterate_batches


@torch.no_grad()
def elbo_terms(model: nn.Module, dataset: Dataset, batch_size: int = 64) -> dict[str, float]:
    """Mean reconstruction NLL, KL and negative ELBO (nats per sentence), one z per sentence.

    Args:
        dataset: tokenized, with `input_ids` and `length` columns.
    """
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = {"reconstruction": 0.0, "kl": 0.0}
    for batch in iterate_batches(dataset, batch_size, model.config.pad_token_id, device):
        outputs = model(**batch)
        totals["reconstruction"] += outputs.reconstruction_nll.sum().item()
        totals["kl"] += outputs.kl.sum().item()
    model.train(was_training)
    means = {name: total / len(dataset) for name, total in totals.items()}
    means["neg_elbo"] = means["reconstruction"] + means["kl"]
    return means
