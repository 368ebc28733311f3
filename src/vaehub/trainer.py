"""`VAETrainer`: transformers' `Trainer` for models that return the ELBO's parts.

The model returns per-example `reconstruction_nll` and `kl`; the trainer weights them into
the loss and logs both terms beside the loss, averaged over the steps since the last log.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Trainer


class VAETrainer(Trainer):
    """A `Trainer` whose loss is the negative ELBO, mean over the batch, and whose logs
    carry `reconstruction` and `kl` (nats per example)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._term_sums: dict[str, float] = {"reconstruction": 0.0, "kl": 0.0}
        self._term_batches = 0

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ):
        outputs = model(**inputs)
        loss = (outputs.reconstruction_nll + outputs.kl).mean()
        if model.training:
            self._term_sums["reconstruction"] += outputs.reconstruction_nll.detach().mean().item()
            self._term_sums["kl"] += outputs.kl.detach().mean().item()
            self._term_batches += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._term_batches:
            for name, total in self._term_sums.items():
                logs[name] = total / self._term_batches
                self._term_sums[name] = 0.0
            self._term_batches = 0
        super().log(logs, start_time)
