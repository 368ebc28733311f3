"""`VAETrainingArguments`: transformers' `TrainingArguments` with the flags of the objectives
against collapse (β and its schedules, free bits, aggressive training, SA-VAE), each checked
when the arguments are built, and whether this CPU can train in bfloat16."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments
from transformers.utils import is_torch_bf16_gpu_available, logging

from vaehub.latent.refinement import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MOMENTUM,
    DEFAULT_STEPS,
    Refinement,
)
from vaehub.training.objectives import SCHEDULES, BetaSchedule, check_free_bits

logger = logging.get_logger(__name__)

OBJECTIVES = ("elbo", "beta", "anneal", "free_bits", "aggressive", "sa_vae", "capacity")


SAMPLING_STRATEGIES = (
    "length_buckets",
    "random",
    "sequential",
    "group_by_length",
    "batch_rebalance",
)


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str] | None:
    """The instruction-set flags Linux reports for this CPU, or `None` where
    `/proc/cpuinfo` is not there to read (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        return None
    return None


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX).

    oneDNN alone is not asked: on an AVX-512 CPU without AVX512-BF16 it runs a bfloat16
    LSTM emulated, about three times slower than float32 (PTB's text VAE, 2 cores). Without
    AVX-512 it refuses bfloat16 inputs, and a bfloat16 matmul runs orders of magnitude
    slower than float32. Where the CPU's flags cannot be read, oneDNN's answer stands.
    """
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    flags = cpu_flags()
    return flags is None or any(flag in flags for flag in NATIVE_BF16_FLAGS)


@dataclass
class VAETrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the VAE objective; every `TrainingArguments` flag works."""

    per_device_eval_batch_size: int = field(
        default=64,
        metadata={
            "help": "Evaluation batch size; MI's aggregate posterior is estimated within "
            "each batch, so small batches bias it (transformers' default is 8)."
        },
    )
    train_sampling_strategy: str = field(
        default="length_buckets",
        metadata={
            "help": "length_buckets (default): batches of sentences of one length where "
            "lengths allow, in random order, as He et al. (no compute on padding; for data "
            "without a `length` column, random); or transformers' random, sequential, "
            "group_by_length, batch_rebalance.",
            "choices": SAMPLING_STRATEGIES,
        },
    )
    objective: str = field(
        default="elbo",
        metadata={
            "help": "elbo, beta (constant β), anneal (β₀ → 1), free_bits (the ELBO with "
            "--free_bits λ > 0), aggressive (He et al.), sa_vae (Kim et al.) or capacity "
            "(the KL held at --capacity C nats, Burgess et al.). "
            "--free_bits also combines with any of the others.",
            "choices": OBJECTIVES,
        },
    )
    beta: float = field(default=1.0, metadata={"help": "β of objective 'beta'."})
    beta_schedule: str | None = field(
        default=None,
        metadata={
            "help": "constant, linear, sigmoid or cyclical. Default: linear for 'anneal', "
            "constant otherwise; give one with 'aggressive' or 'sa_vae' to anneal them."
        },
    )
    anneal_beta_start: float = field(default=0.1, metadata={"help": "β₀ of annealing (Bowman: 0)."})
    anneal_steps: int | None = field(
        default=None, metadata={"help": "Steps over which β rises (or the cyclical total)."}
    )
    anneal_epochs: float | None = field(
        default=None,
        metadata={
            "help": "The same in epochs. Default: 10 epochs (He et al.) for linear and "
            "sigmoid, the whole run for cyclical."
        },
    )
    anneal_cycles: int = field(default=4, metadata={"help": "Cycles M of the cyclical schedule."})
    anneal_ramp_ratio: float = field(
        default=0.5, metadata={"help": "Part R of each cycle over which β rises."}
    )
    free_bits: float = field(
        default=0.0, metadata={"help": "λ nats per latent dim: KL_k → max(λ, KL_k). 0 is off."}
    )
    capacity: float | None = field(
        default=None,
        metadata={
            "help": "C_max in nats of objective 'capacity': loss = reconstruction + "
            "γ·|KL − C|, C raised linearly from 0 to C_max over the anneal steps or epochs "
            "(default 10 epochs)."
        },
    )
    capacity_weight: float = field(
        default=1.0, metadata={"help": "γ of objective 'capacity' (Burgess et al.)."}
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations whose metric_for_best_model fails to "
            "improve (transformers' EarlyStoppingCallback; needs load_best_model_at_end): "
            "train to a plateau with a generous --num_train_epochs."
        },
    )
    aggressive_max_inner_steps: int = field(
        default=100, metadata={"help": "Most encoder steps before a decoder step."}
    )
    aggressive_window: int = field(
        default=15, metadata={"help": "Inner steps whose mean loss per token is compared."}
    )
    aggressive_patience: int = field(
        default=1,
        metadata={
            "help": "Epochs whose validation MI fails to beat its best before aggressive "
            "training stops (He et al.: 1 for text, 5 for images)."
        },
    )
    aggressive_check_steps: int | None = field(
        default=None,
        metadata={
            "help": "Updates between the validation-MI checks that switch aggressive training "
            "off. Default: one check per epoch (He et al.); a budget of about one epoch "
            "needs shorter intervals for the rule to act at all."
        },
    )
    sa_vae_steps: int = field(
        default=DEFAULT_STEPS, metadata={"help": "SVI steps K of sa_vae (Kim et al.: 20)."}
    )
    sa_vae_lr: float = field(
        default=DEFAULT_LEARNING_RATE, metadata={"help": "SVI step size η of sa_vae."}
    )
    sa_vae_momentum: float = field(
        default=DEFAULT_MOMENTUM, metadata={"help": "SVI momentum m of sa_vae."}
    )
    sa_vae_max_grad_norm: float = field(
        default=DEFAULT_MAX_GRAD_NORM,
        metadata={"help": "Per-example norm to which each SVI gradient is clipped."},
    )
    sa_vae_backprop: bool = field(
        default=True,
        metadata={
            "help": "Train the encoder through the SVI steps (Hessian-vector products); "
            "--sa_vae_backprop False trains it on its own ELBO at λ₀."
        },
    )
    eval_refine_steps: int | None = field(
        default=None,
        metadata={
            "help": "SVI steps refining the posterior at evaluation, with sa_vae_lr, "
            "sa_vae_momentum and sa_vae_max_grad_norm. Default: sa_vae_steps for sa_vae, 0 "
            "otherwise."
        },
    )
    iw_samples: int = field(
        default=500, metadata={"help": "Importance samples K of the IW-NLL at evaluation."}
    )
    eval_iw_nll: bool = field(
        default=False, metadata={"help": "Compute the (costly) IW-NLL at every evaluation."}
    )
    iw_nll_after_training_only: bool = field(
        default=False,
        metadata={
            "help": "With --eval_iw_nll: skip the IW-NLL in the evaluations during training "
            "(the ELBO terms, MI and AU still run); the validation and test results measured "
            "after it keep it."
        },
    )
    final_iw_nll_splits: list[str] = field(
        default_factory=lambda: ["validation", "test"],
        metadata={
            "help": "With --eval_iw_nll: the splits whose evaluation after training computes "
            "the IW-NLL (the others keep the ELBO terms, MI and AU). A table's rows need it "
            "on test only."
        },
    )
    eval_max_units: int = field(
        default=4096, metadata={"help": "Tokens or pixels per decoder pass of the IW-NLL."}
    )

    def __post_init__(self) -> None:
        if (
            (self.bf16 or self.bf16_full_eval)
            and not self.use_cpu
            and not is_torch_bf16_gpu_available()
        ):
            # transformers refuses bf16 without an accelerator unless told to use the CPU;
            # on a machine that has only a CPU, that is what asking for bf16 means.
            logger.info("bf16 without a bf16-capable accelerator: training on the CPU.")
            self.use_cpu = True
        super().__post_init__()
        if (self.bf16 or self.bf16_full_eval) and self.use_cpu and not cpu_supports_bf16():
            raise ValueError(
                "bf16=True asks for bfloat16 on this CPU, which has no bfloat16 instructions "
                f"(torch sees {torch.backends.cpu.get_cpu_capability()}; AVX512-BF16 or AMX is "
                "needed): its LSTM refuses bfloat16 and a bfloat16 matmul would run hundreds "
                "of times slower than float32. Leave out --bf16 (train in float32), or run on "
                "a CPU with AVX512-BF16 or AMX, or on a GPU."
            )
        if self.train_sampling_strategy not in SAMPLING_STRATEGIES:
            raise ValueError(
                f"train_sampling_strategy={self.train_sampling_strategy!r} is not valid: "
                f"expected one of {', '.join(map(repr, SAMPLING_STRATEGIES))}."
            )
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"objective={self.objective!r} is not valid: expected one of "
                f"{', '.join(map(repr, OBJECTIVES))}."
            )
        if self.beta_schedule is not None and self.beta_schedule not in SCHEDULES:
            raise ValueError(
                f"beta_schedule={self.beta_schedule!r} is not valid: expected one "
                f"of {', '.join(map(repr, SCHEDULES))}."
            )
        if self.objective == "free_bits" and self.free_bits <= 0:
            raise ValueError(
                "objective='free_bits' needs λ > 0 nats per latent dimension: pass "
                "free_bits=λ (--free_bits λ)."
            )
        if self.objective == "capacity":
            if self.capacity is None or not (
                math.isfinite(self.capacity) and self.capacity > 0
            ):
                raise ValueError(
                    f"objective='capacity' needs a rate target C > 0 nats: pass "
                    f"capacity=C (--capacity C), not {self.capacity!r}."
                )
        elif self.capacity is not None:
            raise ValueError(
                f"capacity={self.capacity} is used only by objective='capacity'."
            )
        if not (math.isfinite(self.capacity_weight) and self.capacity_weight > 0):
            raise ValueError(
                f"capacity_weight={self.capacity_weight!r} is not valid: expected γ > 0."
            )
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 1:
                raise ValueError(
                    f"early_stopping_patience={self.early_stopping_patience!r} is not valid: "
                    "expected an integer >= 1 (evaluations without improvement)."
                )
            if not self.load_best_model_at_end:
                raise ValueError(
                    "early_stopping_patience needs --load_best_model_at_end True (and "
                    "--metric_for_best_model): it stops when that metric stops improving, and "
                    "the model kept is the best one."
                )
        # Checked here, where a bad setting is still a flag: the Refinements refuse it.
        self.sa_vae_refinement  # noqa: B018
        self.eval_refinement  # noqa: B018
        constant = ("elbo", "beta", "free_bits", "capacity")
        if self.objective in constant and self.beta_schedule not in (None, "constant"):
            raise ValueError(
                f"objective={self.objective!r} keeps β constant; use "
                f"objective='anneal' for beta_schedule={self.beta_schedule!r}."
            )
        if self.objective == "anneal" and self.beta_schedule == "constant":
            raise ValueError(
                "objective='anneal' needs a rising schedule: linear, sigmoid or cyclical."
            )
        if self.objective != "beta" and self.beta != 1.0:
            raise ValueError(f"beta={self.beta} is used only by objective='beta'.")
        if self.anneal_steps is not None and self.anneal_epochs is not None:
            raise ValueError("give anneal_steps or anneal_epochs, not both.")
        if self.anneal_steps is not None and (
            isinstance(self.anneal_steps, bool)
            or not isinstance(self.anneal_steps, int)
            or self.anneal_steps < 1
        ):
            raise ValueError(
                f"anneal_steps={self.anneal_steps!r} is not valid: expected an integer >= 1 "
                "(optimiser steps over which β rises)."
            )
        if self.anneal_epochs is not None and not (
            math.isfinite(self.anneal_epochs) and self.anneal_epochs > 0
        ):
            raise ValueError(
                f"anneal_epochs={self.anneal_epochs!r} is not valid: expected a number of "
                "epochs > 0."
            )
        for name in (
            "aggressive_max_inner_steps",
            "aggressive_window",
            "aggressive_patience",
            "iw_samples",
            "eval_max_units",
            "anneal_cycles",
        ):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name}={value!r} is not valid: expected an integer >= 1.")
        if self.aggressive_check_steps is not None and self.aggressive_check_steps < 1:
            raise ValueError(
                f"aggressive_check_steps={self.aggressive_check_steps!r} is not valid: expected "
                "an integer >= 1 (updates between MI checks), or none for one per epoch."
            )
        check_free_bits(self.free_bits)
        for name in ("learning_rate", "num_train_epochs", "max_grad_norm", "weight_decay"):
            value = getattr(self, name, None)
            if isinstance(value, float) and math.isnan(value):
                raise ValueError(f"{name}=nan is not valid: expected a number.")
        if self.max_steps <= 0 and not self.num_train_epochs > 0:
            raise ValueError(
                f"max_steps={self.max_steps} and num_train_epochs={self.num_train_epochs} ask "
                "for no training at all (the model would be saved untrained): give "
                "--max_steps N or --num_train_epochs E > 0."
            )
        # Validates β, β₀, the ramp ratio with the schedule's own checks.
        BetaSchedule(
            self.resolved_beta_schedule,
            self.beta,
            self.anneal_beta_start,
            1,
            self.anneal_cycles,
            self.anneal_ramp_ratio,
        )

    @property
    def resolved_eval_refine_steps(self) -> int:
        if self.eval_refine_steps is not None:
            return self.eval_refine_steps
        return self.sa_vae_steps if self.objective == "sa_vae" else 0

    @property
    def sa_vae_refinement(self) -> Refinement:
        """The refinement SA-VAE trains through (`sa_vae_steps`, `sa_vae_lr`, ...)."""
        return Refinement(
            self.sa_vae_steps, self.sa_vae_lr, self.sa_vae_momentum, self.sa_vae_max_grad_norm
        )

    @property
    def eval_refinement(self) -> Refinement:
        """The refinement evaluation measures with: `resolved_eval_refine_steps` steps of
        the training's step size, momentum and clipping (none outside SA-VAE unless asked)."""
        return Refinement(
            self.resolved_eval_refine_steps, self.sa_vae_lr, self.sa_vae_momentum,
            self.sa_vae_max_grad_norm,
        )  # fmt: skip

    @property
    def resolved_beta_schedule(self) -> str:
        if self.beta_schedule is not None:
            return self.beta_schedule
        return "linear" if self.objective == "anneal" else "constant"
