"""Aggressive training (He et al. 2019, Algorithm 1), the part of `VAETrainer` that runs it.

Before each update the inference network alone is trained on fresh minibatches until the
mean loss per token of the last `window` inner steps stops falling, or for at most
`max_inner_steps` (`InnerLoopStop`); the update that follows changes the decoder only.
After each epoch, or every `aggressive_check_steps` updates, the validation mutual
information decides (`AggressiveState`): once it has failed `patience` times in all to
beat its best, aggressive training stops for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from vaehub.data.batching import index_batches


class InnerLoopStop:
    """He et al.'s stopping rule for the aggressive inner loop.

    Every `window` steps, the mean loss per token of those steps is compared with that of
    the previous `window`; the loop stops when it did not decrease, or after `max_steps`.
    """

    def __init__(self, window: int, max_steps: int) -> None:
        self.window, self.max_steps = window, max_steps
        self.steps = 0
        self.previous = math.inf
        self.loss_sum = self.units = 0.0

    def update(self, loss_sum: float, units: float) -> bool:
        """Record one inner step's summed loss over `units` tokens; `True` means stop."""
        self.steps += 1
        self.loss_sum += loss_sum
        self.units += units
        if self.steps % self.window == 0:
            current = self.loss_sum / self.units
            if current >= self.previous:
                return True
            self.previous = current
            self.loss_sum = self.units = 0.0
        return self.steps >= self.max_steps


@dataclass
class AggressiveState:
    """What the aggressive schedule has decided; saved in every checkpoint."""

    active: bool = False
    mi_history: list[float] = field(default_factory=list)
    best_mi: float = -math.inf
    failures: int = 0
    inner_steps_total: int = 0
    outer_steps: int = 0
    last_inner_loop_step: int = -1
    switched_off_at_epoch: float | None = None

    def record_mi(self, mi: float, patience: int) -> None:
        """After an epoch (or `aggressive_check_steps` updates): count a failure when `mi`
        does not beat the best so far."""
        self.mi_history.append(mi)
        if mi > self.best_mi:
            self.best_mi = mi
        else:
            self.failures += 1
        if self.failures >= patience:
            self.active = False


def inference_parameters(model: nn.Module) -> list[nn.Parameter]:
    """φ, the weights the aggressive inner loop trains: the encoder's, and the posterior
    family's own (flows, auxiliary networks) where the model has them."""
    get = getattr(model, "inference_network_parameters", None)
    return get() if get is not None else list(model.encoder.parameters())


class AggressiveTraining:
    """The inner loop and the MI check, mixed into `VAETrainer` (a transformers `Trainer`).

    It uses the trainer's `objective_loss`, `_validation_mi`, `aggressive`
    (`AggressiveState`), `_inner_generator` and `_encoder_optimizer`, and the Trainer's
    own batch preparation, autocast and optimiser construction.
    """

    def training_step(
        self, model: nn.Module, inputs: dict[str, Tensor], num_items_in_batch: Any = None
    ) -> Tensor:
        # Once per update (the first micro-batch of a gradient-accumulation window).
        if (
            self.aggressive.active
            and self.aggressive.last_inner_loop_step != self.state.global_step
        ):
            self.aggressive.last_inner_loop_step = self.state.global_step
            steps = self.aggressive_inner_loop(self._prepare_inputs(inputs))
            self.aggressive.inner_steps_total += steps
            self.aggressive.outer_steps += 1
            self._inner_steps_since_log += steps
            self._outer_steps_since_log += 1
        return super().training_step(model, inputs, num_items_in_batch)

    def aggressive_inner_loop(self, first_batch: dict[str, Tensor]) -> int:
        """Encoder-only updates until the loss per token stops falling; returns the steps.

        The first step uses `first_batch` (the batch of the decoder update that follows),
        the others random training batches. Decoder weights get no gradient at all, and
        the gradients the Trainer is accumulating are left as they were.
        """
        model = self.model
        encoder = inference_parameters(model)
        encoder_ids = {id(p) for p in encoder}
        decoder = [p for p in model.parameters() if id(p) not in encoder_ids]
        stashed = {p: p.grad for p in model.parameters()}
        requires = {p: p.requires_grad for p in decoder}
        optimizer = self._get_encoder_optimizer()
        for group in optimizer.param_groups:
            group["lr"] = self._get_learning_rate()
        stop = InnerLoopStop(self.args.aggressive_window, self.args.aggressive_max_inner_steps)
        model.train()
        try:
            for parameter in model.parameters():
                parameter.grad = None
            for parameter in decoder:
                parameter.requires_grad_(False)
            batch = first_batch
            while True:
                with self.autocast_smart_context_manager():
                    outputs = model(**batch, return_logits=False)
                    loss = self.objective_loss(outputs)
                units = float(model.units_per_example(**batch).sum())
                gradients = torch.autograd.grad(loss, encoder, allow_unused=True)
                statistics = torch.tensor(
                    [loss.item() * outputs.kl.shape[0], units], dtype=torch.float64
                )
                self._average_across_processes(gradients, statistics)
                for parameter, gradient in zip(encoder, gradients, strict=True):
                    parameter.grad = gradient
                if self.args.max_grad_norm and self.args.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(encoder, self.args.max_grad_norm)
                optimizer.step()
                for parameter in encoder:
                    parameter.grad = None
                if stop.update(statistics[0].item(), statistics[1].item()):
                    return stop.steps
                batch = self._random_training_batch()
        finally:
            for parameter, flag in requires.items():
                parameter.requires_grad_(flag)
            for parameter, grad in stashed.items():
                parameter.grad = grad

    def _average_across_processes(
        self, gradients: tuple[Tensor | None, ...], statistics: Tensor
    ) -> None:
        """All-reduce the inner step's gradients (mean) and loss statistics (sum), so that
        every process takes the same step and the same decision to stop."""
        if self.accelerator.num_processes <= 1 or not dist.is_initialized():
            return
        world = self.accelerator.num_processes
        for gradient in gradients:
            if gradient is not None:
                dist.all_reduce(gradient)
                gradient.div_(world)
        dist.all_reduce(statistics)

    def _get_encoder_optimizer(self) -> torch.optim.Optimizer:
        # Its own state, apart from the decoder's (He et al. keep two optimizers).
        if self._encoder_optimizer is None:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(
                self.args, self.model
            )
            # Weight decay as the Trainer's own optimiser applies it: through parameter
            # groups (the optimiser's default would otherwise apply to every weight).
            decay = set(self.get_decay_parameter_names(self.model))
            inference = {id(p) for p in inference_parameters(self.model)}
            named = [(n, p) for n, p in self.model.named_parameters() if id(p) in inference]
            groups = [
                {
                    "params": [p for n, p in named if n in decay],
                    "weight_decay": self.args.weight_decay,
                },
                {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
            ]
            groups = [group for group in groups if group["params"]]
            self._encoder_optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self._encoder_optimizer

    def _random_training_batch(self) -> dict[str, Tensor]:
        dataset = self.train_dataset
        if self._inner_batches is None:
            self._inner_batches = index_batches(dataset, self.args.per_device_train_batch_size)
        index = int(torch.randint(len(self._inner_batches), (1,), generator=self._inner_generator))
        rows = [dataset[i] for i in self._inner_batches[index]]
        collator = self._get_collator_with_removed_columns(self.data_collator, "training")
        return self._prepare_inputs(collator(rows))

    def _check_aggressive(self) -> None:
        if not self.aggressive.active:
            return
        mi = self._validation_mi()
        self.aggressive.record_mi(mi, self.args.aggressive_patience)
        if not self.aggressive.active:
            self.aggressive.switched_off_at_epoch = self.state.epoch
        self.log({"validation_mi": mi, "aggressive": float(self.aggressive.active)})
