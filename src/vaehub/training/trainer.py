"""`VAETrainer`: transformers' `Trainer` with the objectives that fight posterior collapse.

The model returns per-example `reconstruction_nll` and `kl` (and `kl_per_dim`); the
trainer weights them (`docs/formulas.md`):

- `elbo`: β = 1; `beta`: constant β; `anneal`: β from β₀ to 1 on a linear, sigmoid or
  cyclical schedule; `free_bits` (λ per latent dim) on top of any of them.
- `aggressive` (He et al. 2019, Algorithm 1; `vaehub.training.aggressive`): encoder-only inner
  steps before each update, which then changes the decoder only, until the validation
  mutual information stops rising. Give `beta_schedule` to combine it with annealing.
- `sa_vae` (Kim et al. 2018, Algorithm 1): `sa_vae_steps` SVI steps refine the encoder's
  λ₀ into λ_K (`vaehub.latent.svi`); the update is on ELBO(x; λ_K), the decoder through its
  direct gradient, the encoder backpropagated through the steps (or, with
  `sa_vae_backprop=False`, on its own ELBO at λ₀). β (anneal) weights the KL of every
  step; free bits apply to the update's loss. Evaluation then uses the refined posterior
  too (`eval_refine_steps`, default `sa_vae_steps`).

Everything the trainer decides — β, aggressive on/off, inner steps taken, the MI history —
is logged and saved in each checkpoint, so `resume_from_checkpoint` continues exactly.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import fields
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, RandomSampler
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import logging

from vaehub.data.batching import LengthBucketSampler, index_batches
from vaehub.evaluation.metrics import evaluate_vae, mutual_information_terms
from vaehub.latent import svi
from vaehub.models.checkpoints import (
    CheckpointError,
    check_training_checkpoint,
    newest_complete_checkpoint,
)
from vaehub.training.aggressive import AggressiveState, AggressiveTraining, inference_parameters
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.objectives import BetaSchedule, capacity_at, capacity_term, kl_term
from vaehub.utils import safe_io

logger = logging.get_logger(__name__)


STATE_FILE = "vae_trainer_state.json"


ENCODER_OPTIMIZER_FILE = "encoder_optimizer.pt"


class _VAETrainerHooks(TrainerCallback):
    """Trainer events the VAE objectives act on."""

    def __init__(self, trainer: VAETrainer) -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._build_beta_schedule()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        # The update after an aggressive inner loop changes the decoder only.
        if self.trainer.aggressive.active:
            for parameter in inference_parameters(self.trainer.model):
                parameter.grad = None

    def on_step_end(self, args, state, control, **kwargs):
        every = args.aggressive_check_steps
        if every is not None and state.global_step % every == 0:
            self.trainer._check_aggressive()

    def on_epoch_end(self, args, state, control, **kwargs):
        if args.aggressive_check_steps is None:
            self.trainer._check_aggressive()


class VAETrainer(AggressiveTraining, Trainer):
    """A `Trainer` whose loss is the weighted negative ELBO of `VAETrainingArguments`.

    Logs carry `reconstruction` and `kl` (nats per example), `beta`, and with
    `aggressive`: `aggressive` (1 on, 0 off) and `inner_steps` (mean per update).
    `evaluate()` reports reconstruction, KL, negative ELBO, MI and active units, and the
    IW-NLL with PPL or bits/dim when `eval_iw_nll` is set.

    The model must have an `encoder` submodule (the inference network) for `aggressive`.
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        *rest: Any,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = VAETrainingArguments()
        elif not isinstance(args, VAETrainingArguments):
            # Plain TrainingArguments train with the ELBO and the defaults above; converted
            # before the Trainer builds its accelerator from them.
            args = VAETrainingArguments(
                **{f.name: getattr(args, f.name) for f in fields(TrainingArguments) if f.init}
            )
        super().__init__(model, args, *rest, **kwargs)
        self._term_sums = {"reconstruction": 0.0, "kl": 0.0}
        self._term_batches = 0
        self._last_beta = 1.0
        self._last_capacity: float | None = None
        self._inner_steps_since_log = self._outer_steps_since_log = 0
        self.beta_schedule: BetaSchedule | None = None
        # True while train() runs: the evaluations it calls are the ones during training.
        self._training = False
        self.aggressive = AggressiveState(active=self.args.objective == "aggressive")
        if not getattr(self.model, "has_latent", True):
            _check_no_latent_settings(self.args, type(self.model).__name__)
        self._encoder_optimizer: torch.optim.Optimizer | None = None
        self._inner_batches: list[list[int]] | None = None
        self._inner_generator = torch.Generator().manual_seed(
            self.args.seed + 1000 * self.args.process_index
        )
        if self.aggressive.active:
            if not isinstance(getattr(self.model, "encoder", None), nn.Module):
                raise ValueError(
                    "objective='aggressive' needs a model with an `encoder` "
                    "submodule, the inference network it trains on its own."
                )
            if self.eval_dataset is None:
                raise ValueError(
                    "objective='aggressive' needs an eval_dataset: its mutual "
                    "information decides when aggressive training stops."
                )
        if self.args.objective == "sa_vae" and self.args.eval_refinement.steps:
            # The model is meant to be used with the refinement it trained with: encode,
            # reconstruct, evaluate and the card infer with it unless told otherwise.
            self.model.config.inference_refinement = self.args.eval_refinement.record()
        if self.args.objective == "sa_vae" and not callable(
            getattr(self.model, "posterior_parameters", None)
        ):
            raise ValueError(
                "objective='sa_vae' needs a vaehub model (one with posterior_parameters), "
                "whose posterior's λ the SVI steps refine."
            )
        self.add_callback(_VAETrainerHooks(self))
        if self.args.early_stopping_patience is not None:
            self.add_callback(EarlyStoppingCallback(self.args.early_stopping_patience))

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        if self.args.train_sampling_strategy != "length_buckets":
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        # The Trainer hands over the dataset without the columns forward does not take:
        # the lengths come from the dataset as given, whose rows are the same.
        source = self.train_dataset
        if "length" not in (getattr(source, "column_names", None) or []) or len(source) != len(
            dataset
        ):
            return RandomSampler(dataset)  # images, vectors: every example is one size
        return LengthBucketSampler(
            source["length"], self.args.per_device_train_batch_size, self.args.seed
        )

    # --- the objective ----------------------------------------------------------------

    def _build_beta_schedule(self) -> None:
        args, state = self.args, self.state
        kind = args.resolved_beta_schedule
        steps_per_epoch = state.max_steps / max(state.num_train_epochs, 1e-12)
        if args.anneal_steps is not None:
            length = args.anneal_steps
        elif args.anneal_epochs is not None:
            length = args.anneal_epochs * steps_per_epoch
        elif kind == "cyclical":
            length = state.max_steps
        else:
            length = 10 * steps_per_epoch
        self.beta_schedule = BetaSchedule(
            kind,
            args.beta,
            args.anneal_beta_start,
            max(1, round(length)),
            args.anneal_cycles,
            args.anneal_ramp_ratio,
        )

    @property
    def current_beta(self) -> float:
        """β for the update in progress."""
        if self.beta_schedule is None:
            self._build_beta_schedule()
        return self.beta_schedule(self.state.global_step)

    @property
    def current_capacity(self) -> float | None:
        """C of objective 'capacity' for the update in progress (`None` for the others)."""
        if self.args.objective != "capacity":
            return None
        if self.beta_schedule is None:
            self._build_beta_schedule()
        # C rises over the same steps as an annealed β would (the schedule's length).
        return capacity_at(self.state.global_step, self.args.capacity, self.beta_schedule.length)

    def objective_loss(self, outputs: Any) -> Tensor:
        """mean_x reconstruction + β · KL term (free bits applied), for one batch; for
        objective 'capacity', mean_x reconstruction + γ · |KL term − C|."""
        kl = kl_term(
            outputs.kl_per_dim,
            self.args.free_bits,
            kl=outputs.kl,
            latent_size=getattr(self.model.config, "latent_size", None),
        )
        reconstruction = outputs.reconstruction_nll.mean()
        if self.args.objective == "capacity":
            return reconstruction + capacity_term(
                kl, self.current_capacity, self.args.capacity_weight
            )
        return reconstruction + self.current_beta * kl

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ):
        if self.args.objective == "sa_vae":
            outputs, loss = self.semi_amortised_loss(model, inputs)
        else:
            outputs = model(**inputs, return_logits=False)
            loss = self.objective_loss(outputs)
        if model.training:
            self._term_sums["reconstruction"] += outputs.reconstruction_nll.detach().mean().item()
            self._term_sums["kl"] += outputs.kl.detach().mean().item()
            self._term_batches += 1
            self._last_beta = self.current_beta
            self._last_capacity = self.current_capacity
        return (loss, outputs) if return_outputs else loss

    # --- semi-amortised training -------------------------------------------------------

    def semi_amortised_loss(
        self, model: nn.Module, inputs: dict[str, Tensor]
    ) -> tuple[Any, Tensor]:
        """SA-VAE's loss for one batch: the objective at λ_K, K SVI steps from λ₀.

        `model` is what the Trainer calls (wrapped under torchrun); the SVI steps run on
        the bare model with every weight frozen, and the update's forward pass goes
        through `model` with λ_K, so gradients synchronise as for any other loss.
        """
        bare, args = self.model, self.args
        backprop = args.sa_vae_backprop and bare.training
        # Mixed precision wraps `forward` only; the encoder and the steps call the model's
        # parts, so they enter the same autocast here, or a bf16 run would refine in float32.
        with self.accelerator.autocast():
            initial = bare.posterior_parameters(**inputs)
            refined = svi.refine_with(
                bare,
                bare.checked_batch(**inputs),
                initial,
                args.sa_vae_refinement,
                beta=self.current_beta,
                create_graph=backprop,
            )
        if not backprop and args.sa_vae_steps > 0:
            refined = refined.detached()
        outputs = model(**inputs, posterior_parameters=refined, return_logits=False)
        loss = self.objective_loss(outputs)
        if bare.training and not args.sa_vae_backprop and args.sa_vae_steps > 0:
            # The encoder's own ELBO at λ₀, with the decoder's weights held fixed; added so
            # that its value is 0 and the loss reported stays the update's.
            with svi.frozen_except(bare, inference_parameters(bare)):
                encoder_loss = self.objective_loss(
                    bare(**inputs, posterior_parameters=initial, return_logits=False)
                )
            loss = loss + (encoder_loss - encoder_loss.detach())
        return outputs, loss

    def _validation_mi(self) -> float:
        """He et al.'s MI estimate on the validation set, the same on every process."""
        model = self.model
        was_training = model.training
        model.eval()
        total = weight = 0.0
        with torch.no_grad(), _forked_rng():
            torch.manual_seed(self.args.seed + int(self.state.global_step))
            for batch in self._evaluation_batches(self.eval_dataset):
                negative_entropy, log_aggregate = mutual_information_terms(model.encode(**batch))
                n = next(iter(batch.values())).shape[0]
                total += (negative_entropy - log_aggregate).item() * n
                weight += n
        model.train(was_training)
        mi = torch.tensor([total / weight], dtype=torch.float64)
        if self.accelerator.num_processes > 1 and dist.is_initialized():
            dist.broadcast(mi, src=0)
        return mi.item()

    def _evaluation_batches(self, dataset: Any):
        """The whole dataset on every process, collated as for training.

        Sentences (a `length` column) come in batches of similar length, as `vaehub
        evaluate` makes them: less padding, and MI's aggregate posterior for sequence
        latents is taken over same-length sentences, which needs them batched together.
        Random draws of the collator (dynamic binarization) are seeded per batch.
        """
        collator = self._get_collator_with_removed_columns(self.data_collator, "evaluation")
        batches = index_batches(dataset, self.args.per_device_eval_batch_size)
        seeded = _SeededCollator(collator, self.args.seed)
        for batch in DataLoader(dataset, batch_sampler=batches, collate_fn=seeded):
            yield self._prepare_inputs(batch)

    # --- evaluation -------------------------------------------------------------------

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Reconstruction, KL, negative ELBO, MI and active units on the evaluation set;
        with `eval_iw_nll`, also the IW-NLL (K = `iw_samples`) with PPL or bits/dim."""
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if dataset is None:
            raise ValueError("evaluate() needs an eval_dataset.")
        with _forked_rng():
            torch.manual_seed(self.args.seed)
            results = evaluate_vae(
                self.model,
                self._evaluation_batches(dataset),
                iw_samples=self.args.iw_samples if self._iw_nll_now(metric_key_prefix) else None,
                max_units=self.args.eval_max_units,
                show_progress=not self.args.disable_tqdm and self.is_world_process_zero(),
                total=len(dataset),
                # Measured on the posterior refined as the training refined it.
                refinement=self.args.eval_refinement,
            )
        metrics = {f"{metric_key_prefix}_loss": self._evaluation_loss(results)}
        for key, value in results.items():
            if isinstance(value, (int, float)):
                metrics[f"{metric_key_prefix}_{key}"] = float(value)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        return metrics

    def _evaluation_loss(self, results: dict[str, Any]) -> float:
        """The evaluation's `loss`: the negative ELBO, or for objective 'capacity' the
        objective itself, reconstruction + γ·|KL − C| at the current C, so that the best
        checkpoint and early stopping follow what the run optimises (the ELBO of a model
        whose rate is being raised gets worse by design)."""
        if self.args.objective != "capacity" or "reconstruction" not in results:
            return results["neg_elbo"]
        gap = abs(results["kl"] - self.current_capacity)
        return results["reconstruction"] + self.args.capacity_weight * gap

    # --- logs and checkpoints ---------------------------------------------------------

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._term_batches:
            for name, total in self._term_sums.items():
                logs[name] = total / self._term_batches
                self._term_sums[name] = 0.0
            self._term_batches = 0
            logs["beta"] = self._last_beta
            if self.args.objective == "capacity":
                logs["capacity"] = self._last_capacity
            if self.args.objective == "aggressive":
                logs["aggressive"] = float(self.aggressive.active)
                if self._outer_steps_since_log:
                    logs["inner_steps"] = self._inner_steps_since_log / self._outer_steps_since_log
                self._inner_steps_since_log = self._outer_steps_since_log = 0
        super().log(logs, start_time)

    def trainer_decisions(self) -> dict[str, Any]:
        """β and the aggressive state, as saved in checkpoints."""
        return {
            "beta": self.current_beta,
            "global_step": self.state.global_step,
            "aggressive": vars(self.aggressive).copy(),
            "inner_generator": self._inner_generator.get_state().tolist(),
        }

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        # vaehub's state goes in first: transformers writes trainer_state.json last, and
        # only then rotates old checkpoints, so a checkpoint that has it is complete.
        folder = os.path.join(
            self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}"
        )
        existed = os.path.isdir(folder)
        try:
            self._save_checkpoint_files(folder, model, trial)
        except Exception as error:
            if not (self.args.should_save and safe_io.is_disk_full(error, folder)):
                raise
            raise self._disk_full(folder, existed, error) from error

    def _disk_full(self, folder: str, existed: bool, error: Exception) -> safe_io.DiskFullError:
        """The error for a checkpoint the disk had no room for: torch and safetensors say
        "unexpected pos 3520 vs 3412" or "file write failed", naming neither the disk nor
        the file."""
        written = [os.path.join(folder, name) for name in os.listdir(folder)] if os.path.isdir(
            folder
        ) else []  # fmt: skip
        last = max(written, key=os.path.getmtime) if written else folder
        if not existed and not os.path.isfile(os.path.join(folder, "trainer_state.json")):
            # Unfinished, so never resumed from; removing it gives the space back.
            shutil.rmtree(folder, ignore_errors=True)
        parent = os.path.dirname(folder)
        complete = sorted(
            (
                os.path.join(parent, name)
                for name in os.listdir(parent)
                if name.startswith("checkpoint-") and name[11:].isdigit()
                and os.path.join(parent, name) != folder
                and os.path.isfile(os.path.join(parent, name, "trainer_state.json"))
            ),
            key=lambda path: int(path.rsplit("-", 1)[1]),
        )  # fmt: skip
        previous = complete[-1] if complete else None
        kept = (
            f"the previous checkpoint {previous} is intact: free some space and resume "
            f"with --resume_from_checkpoint {previous}"
            if previous
            else "no earlier checkpoint was written: free some space and train again"
        )
        return safe_io.DiskFullError(
            errno.ENOSPC,
            f"the disk is full: saving checkpoint {folder} failed while writing "
            f"{os.path.basename(last)} ({type(error).__name__}); the unfinished checkpoint "
            f"was removed, and {kept}",
        )

    def _save_checkpoint_files(self, folder: str, model: nn.Module, trial: Any) -> None:
        if self.args.should_save:
            os.makedirs(folder, exist_ok=True)
            # allow_nan: the aggressive loop's best MI is -inf until its first check.
            safe_io.write_json(
                os.path.join(folder, STATE_FILE), self.trainer_decisions(), allow_nan=True
            )
            if self._encoder_optimizer is not None:
                state = self._encoder_optimizer.state_dict()
                safe_io.write_atomically(
                    os.path.join(folder, ENCODER_OPTIMIZER_FILE),
                    lambda path: torch.save(state, path),
                )
        super()._save_checkpoint(model, trial)

    def _iw_nll_now(self, split: str) -> bool:
        if not self.args.eval_iw_nll:
            return False
        if self._training:
            return not self.args.iw_nll_after_training_only
        return split not in ("validation", "test") or split in self.args.final_iw_nll_splits

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """`Trainer.train`, after checking that the checkpoint to resume from is complete
        (raises `vaehub.CheckpointError` naming the bad file and an earlier checkpoint)."""
        extra = {STATE_FILE: "json", ENCODER_OPTIMIZER_FILE: "torch"}
        if isinstance(resume_from_checkpoint, str) and resume_from_checkpoint.strip().lower() in (
            "true", "false",
        ):  # fmt: skip
            # The command line gives `--resume_from_checkpoint True` as the string "True".
            resume_from_checkpoint = resume_from_checkpoint.strip().lower() == "true" or None
        if isinstance(resume_from_checkpoint, str) and not os.path.isdir(resume_from_checkpoint):
            newest = newest_complete_checkpoint(self.args.output_dir, extra)
            raise CheckpointError(
                f"cannot resume from {resume_from_checkpoint}: there is no such folder. "
                + (
                    f"The newest complete checkpoint in {self.args.output_dir} is {newest}: "
                    f"--resume_from_checkpoint {newest} (or True) resumes from it."
                    if newest
                    else f"{self.args.output_dir} holds no complete checkpoint: train without "
                    "--resume_from_checkpoint to start afresh."
                )
            )
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise ValueError(
                    f"resume_from_checkpoint=True, but {self.args.output_dir} holds no "
                    "checkpoint-N folder: train without it to start afresh."
                )
        if resume_from_checkpoint:
            check_training_checkpoint(resume_from_checkpoint, extra)
        self._training = True
        try:
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            self._training = False

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, STATE_FILE)
        if not os.path.isfile(path):
            logger.warning(
                f"{path} is missing: resuming with a fresh objective state (β schedule from "
                "the step count, aggressive training on, no MI history). Checkpoints "
                "written by VAETrainer carry this file."
            )
            return
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        self.aggressive = AggressiveState(**saved["aggressive"])
        self._inner_generator.set_state(torch.tensor(saved["inner_generator"], dtype=torch.uint8))
        optimizer_path = os.path.join(checkpoint, ENCODER_OPTIMIZER_FILE)
        if os.path.isfile(optimizer_path):
            self._get_encoder_optimizer().load_state_dict(
                torch.load(optimizer_path, map_location="cpu", weights_only=True)
            )


def _check_no_latent_settings(args: VAETrainingArguments, name: str) -> None:
    """A model without a latent has no KL to weight or posterior to refine: its ELBO is its
    exact log-likelihood. Refuse settings that would silently do nothing."""
    given = []
    if args.objective != "elbo":
        given.append(f"objective={args.objective!r}")
    if args.free_bits:
        given.append(f"free_bits={args.free_bits}")
    if args.beta != 1.0:
        given.append(f"beta={args.beta}")
    if args.resolved_beta_schedule != "constant":
        given.append(f"beta_schedule={args.resolved_beta_schedule!r}")
    if given:
        raise ValueError(
            f"{name} has no latent, so {', '.join(given)} would change nothing: train it "
            "with objective='elbo' (its exact NLL) and the defaults of beta and free_bits."
        )


class _SeededCollator:
    """A collator whose random draws (dynamic binarization) depend only on the seed and
    the batch's place in the order, not on what the model drew before: two models
    evaluated on a dataset see the same batches, so their NLLs can be compared."""

    def __init__(self, collator: Any, seed: int) -> None:
        self.collator, self.seed, self.calls = collator, seed, 0

    def __call__(self, rows: list[Any]) -> Any:
        with _forked_rng():
            torch.manual_seed(self.seed + self.calls)
            self.calls += 1
            return self.collator(rows)


def _forked_rng():
    """A scope whose random draws leave the training streams (CPU and CUDA) untouched."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    return torch.random.fork_rng(devices=devices)
