"""Throughput, memory and precision of the LSTM text VAE on this CPU, against its floor.

For each setting — the PTB model (256 / 256 / 256, z = 32) and the Yahoo-sized model
(512 / 1024 / 1024, z = 32, run on PTB sentences with the PTB vocabulary because the Yahoo
corpus is not available here) — the script measures, in float32 and in bfloat16 mixed
precision (autocast around the forward, float32 master weights):

- vaehub's training step against the same model in plain PyTorch (`plain_reference.py`)
  on the same batches, the two interleaved: this host's yardstick;
- training throughput in target tokens/s with the plain ELBO and with aggressive training
  (He et al. 2019: encoder-only inner steps through `AggressiveTraining.aggressive_inner_loop`,
  then a decoder update), and the cost of one inner step against one full step;
- the cost of one SVI step on λ (`vaehub.latent.svi`, weights frozen) and of one SA-VAE update
  (Kim et al.: K steps backpropagated, then the update) against one plain step;
- the IW-NLL rate (`vaehub.evaluation.metrics.importance_weighted_log_likelihood`, K = 500) and its
  peak memory at two values of K;
- one MI + active-units pass over the PTB test set (`vaehub.evaluation.metrics.evaluate_vae`),
  encoder only and, as it cost before that path, with the decoder's reconstruction pass;
- the validation IW-NLL of one briefly trained model scored in float32 and in bfloat16.

Every rate is also given as a fraction of its floor: the time the machine's own measured
`torch.mm` rate (same dtype, same thread count) needs for the matmul FLOPs the work
contains, counted analytically. Data loading is excluded from every timing: batches are
collated before the clock starts.

    python benchmarks/bench_text_vae.py                  # both settings (~10 min, 2 cores)
    python benchmarks/bench_text_vae.py --quick          # smoke run (under a minute)
    python benchmarks/bench_text_vae.py --settings ptb --steps 30 --json out.json
    python benchmarks/bench_text_vae.py --settings ptb --profile 5   # top ops of a step
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from plain_reference import PlainTextVAE  # the same model in plain PyTorch: this host's yardstick
from shared_data import default_data_dir
from torch import Tensor, nn

from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
from vaehub.data.batching import length_bucketed_batches
from vaehub.data.text import TextCollator, load_ptb, tokenize_corpus
from vaehub.evaluation.metrics import evaluate_vae, importance_weighted_log_likelihood
from vaehub.latent import svi
from vaehub.training.arguments import VAETrainingArguments, cpu_supports_bf16
from vaehub.training.trainer import VAETrainer

Batch = dict[str, Tensor]

BATCH_SIZE = 32
EVAL_BATCH_SIZE = 64  # VAETrainingArguments.per_device_eval_batch_size
PTB_VOCAB_SIZE = 10002  # PTB's 9,998 words besides <unk>, plus <pad> <unk> <s> </s>
LEARNING_RATE = 1e-3
MAX_GRAD_NORM = 5.0  # He et al. clip at 5

# The targets this benchmark checks: it reports against them and never tunes the model to meet
# them.
TARGET_FLOOR_FRACTION = {"elbo": 0.75, "iw": 0.85}  # float32 training, IW-NLL
TARGET_BF16_TRAIN_FLOOR = 0.40
TARGET_BF16_TRAIN_SPEEDUP = 2.5
TARGET_BF16_IW_SPEEDUP = 4.0
TARGET_NLL_GAP = 0.05
TARGET_INNER_FRACTION = 0.70  # an aggressive inner step or an SVI step, of a full step
TARGET_MI_AU_SPEEDUP = 2.5  # the encoder-only MI + AU pass against the one with the decoder
# vaehub's training step against the plain PyTorch model's on the same batches and cores:
# the host-independent form of "as fast as the reference implementation".
TARGET_PLAIN_RATIO = 1.0
# IW-NLL memory counts as bounded by the chunk when K = 500 costs no more than this over
# K = 100 (relative, or absolute for small peaks where allocator noise dominates); memory
# that grew with K would grow ~5x.
TARGET_MEMORY_GROWTH = 1.2
MEMORY_NOISE_MIB = 64.0


@dataclass
class Budget:
    """How much work each measurement does; `--quick` and `--steps` set it."""

    warmup: int = 3
    steps: int = 20
    size_divisor: int = 1  # model sizes are divided by this (--quick only)
    aggressive_outer: int = 2
    inner_steps: int = 10
    fraction_steps: int = 3  # full steps and inner steps per round of the same-batch ratio
    iw_samples: int = 500
    iw_samples_small: int = 100
    max_units: int = 16384
    mi_sentences: int | None = None  # None: the whole test set
    val_samples: int = 50
    # Per setting: the Yahoo-sized model costs ~6x the PTB one per token.
    iw_sentences: dict[str, int] = field(default_factory=lambda: {"ptb": 32, "yahoo": 8})
    val_steps: dict[str, int] = field(default_factory=lambda: {"ptb": 200, "yahoo": 30})
    val_sentences: dict[str, int] = field(default_factory=lambda: {"ptb": 500, "yahoo": 64})


def quick_budget() -> Budget:
    return Budget(
        size_divisor=4,
        warmup=1,
        steps=2,
        aggressive_outer=1,
        inner_steps=2,
        fraction_steps=2,
        iw_samples=40,
        iw_samples_small=16,
        max_units=1024,
        mi_sentences=128,
        val_samples=4,
        iw_sentences={"ptb": 8, "yahoo": 4},
        val_steps={"ptb": 3, "yahoo": 2},
        val_sentences={"ptb": 32, "yahoo": 8},
    )


# --- the floor ----------------------------------------------------------------------------


@dataclass
class FlopCounter:
    """Matmul FLOPs (2·m·n·k each) of one forward pass, from the model's sizes.

    Counted: the encoder LSTM's input and recurrent matmuls over every input token
    (`<s>` and `</s>` included), the decoder LSTM's over every decoder input (one per
    target token, [embedding; z] as input), the output layer H·V per target token, and
    per sentence the μ/σ layer and the z → initial-state layer. Not counted: embedding
    lookups, gate nonlinearities, log-softmax, KL and optimizer updates (no matmuls), and
    padding positions (work the floor does not allow for).
    """

    config: TextVAEConfig

    @property
    def encoder_per_token(self) -> float:
        c = self.config
        return 2.0 * 4 * c.encoder_hidden_size * (c.embedding_size + c.encoder_hidden_size)

    @property
    def decoder_lstm_per_token(self) -> float:
        c = self.config
        inputs = c.embedding_size + c.latent_size + c.decoder_hidden_size
        return 2.0 * 4 * c.decoder_hidden_size * inputs

    @property
    def output_per_token(self) -> float:
        return 2.0 * self.config.decoder_hidden_size * self.config.vocab_size

    @property
    def encoder_per_sentence(self) -> float:
        return 2.0 * self.config.encoder_hidden_size * 2 * self.config.latent_size

    @property
    def decoder_per_sentence(self) -> float:
        return 2.0 * self.config.latent_size * self.config.decoder_hidden_size

    def encoder(self, batch: Batch) -> float:
        """Forward FLOPs of the encoder on `batch` (`attention_mask`: `(batch, seq_len)`)."""
        mask = batch["attention_mask"]
        return self.encoder_per_token * float(mask.sum()) + self.encoder_per_sentence * len(mask)

    def decoder(self, batch: Batch) -> float:
        """Forward FLOPs of the decoder scoring `batch` under one z per sentence."""
        mask = batch["attention_mask"]
        per_token = self.decoder_lstm_per_token + self.output_per_token
        return per_token * float(mask[:, 1:].sum()) + self.decoder_per_sentence * len(mask)

    def training(self, batch: Batch) -> float:
        # Backward ≈ 2x forward: one matmul for the input gradient, one for the weights'.
        return 3.0 * (self.encoder(batch) + self.decoder(batch))

    def inner_step(self, batch: Batch) -> float:
        # Decoder weights take no gradient in an inner step: its backward is the
        # input-gradient half only.
        return 3.0 * self.encoder(batch) + 2.0 * self.decoder(batch)

    def iw_nll(self, batch: Batch, samples: int) -> float:
        return self.encoder(batch) + samples * self.decoder(batch)

    def per_target_token(self, batches: Sequence[Batch]) -> dict[str, float]:
        """Forward FLOPs per target token, averaged over `batches`."""
        targets = sum(float(b["attention_mask"][:, 1:].sum()) for b in batches)
        inputs = sum(float(b["attention_mask"].sum()) for b in batches)
        sentences = sum(len(b["attention_mask"]) for b in batches)
        parts = {
            "encoder_lstm": self.encoder_per_token * inputs / targets,
            "decoder_lstm": self.decoder_lstm_per_token,
            "output_layer": self.output_per_token,
            "linear_z": (self.encoder_per_sentence + self.decoder_per_sentence)
            * sentences
            / targets,
        }
        parts["total"] = sum(parts.values())
        parts["decoder"] = parts["decoder_lstm"] + parts["output_layer"]
        parts["targets_per_sentence"] = targets / sentences
        return parts


def matmul_shapes(configs: Sequence[TextVAEConfig], tokens: int) -> list[tuple[int, int, int]]:
    """(m, k, n) shapes the models multiply: output layer, LSTM input, LSTM step."""
    shapes = [(2048, 2048, 2048)]
    for c in configs:
        gates = 4 * c.decoder_hidden_size
        shapes += [
            (tokens, c.decoder_hidden_size, c.vocab_size),
            (tokens, c.embedding_size + c.latent_size, gates),
            (BATCH_SIZE, c.decoder_hidden_size, gates),
        ]
    return list(dict.fromkeys(shapes))


def measure_matmul_rate(
    dtype: torch.dtype, shapes: Sequence[tuple[int, int, int]], repeats: int = 7
) -> dict[str, float]:
    """Best `torch.mm` GFLOP/s per shape after warm-up; `"best"` is the machine's rate."""
    generator = torch.Generator().manual_seed(0)
    rates: dict[str, float] = {}
    for m, k, n in shapes:
        a = torch.randn(m, k, generator=generator).to(dtype)
        b = torch.randn(k, n, generator=generator).to(dtype)
        flops = 2.0 * m * k * n
        # Enough calls per timing that each lasts ~20 ms, so timer and launch noise vanish;
        # these calibration calls are also the warm-up.
        calls = 1
        while True:
            start = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b)
            if time.perf_counter() - start > 0.02 or calls >= 4096:
                break
            calls *= 2
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b)
            best = min(best, (time.perf_counter() - start) / calls)
        rates[f"{m}x{k}x{n}"] = flops / best / 1e9
    rates["best"] = max(rates.values())
    return rates


# --- memory -------------------------------------------------------------------------------


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _load_libc()


def release_free_memory() -> None:
    """Hand memory that is free but still held by the allocator back to the system.

    glibc keeps freed blocks for reuse, so without this a phase that fits in what an
    earlier phase freed shows no growth in resident memory, whatever it allocates.
    """
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak resident memory of a phase above the resident memory at its start, in MiB.

    On Linux the kernel's high-water mark is reset at the start (`/proc/self/clear_refs`),
    so each phase gets its own peak in one process. Elsewhere it falls back to
    `ru_maxrss`, which never resets: `exact` is then False and a phase reads no lower
    than the highest before it.
    """

    def __init__(self) -> None:
        self.exact = False
        self.peak_mib = math.nan

    def __enter__(self) -> PeakMemory:
        release_free_memory()
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
                handle.write("5")
            self.exact = _status_kib("VmHWM") is not None
        except OSError:
            self.exact = False
        rss = _status_kib("VmRSS")
        self.start_kib = rss if rss is not None else self._maxrss_kib()
        return self

    def __exit__(self, *exc: object) -> None:
        high = _status_kib("VmHWM") if self.exact else None
        high = high if high is not None else self._maxrss_kib()
        self.peak_mib = (high - self.start_kib) / 1024

    @staticmethod
    def _maxrss_kib() -> int:
        usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return usage // 1024 if sys.platform == "darwin" else usage


# --- precision ----------------------------------------------------------------------------


def autocast(bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


@contextlib.contextmanager
def autocast_forward(model: nn.Module, bf16: bool) -> Iterator[None]:
    """Run `model.forward` under bf16 autocast, backward and optimizer outside it.

    This is what accelerate does for `Trainer(bf16=True)`: it wraps the forward, so the
    same holds inside `aggressive_inner_loop`, which calls `model(**batch)`.
    """
    if not bf16:
        yield
        return
    model.forward = torch.autocast("cpu", dtype=torch.bfloat16)(model.forward)
    try:
        yield
    finally:
        del model.forward


# --- data ---------------------------------------------------------------------------------


@dataclass
class Corpus:
    tokenizer: Any
    splits: Any  # DatasetDict with input_ids and length


def load_corpus(data_dir: Path, quick: bool) -> Corpus:
    ptb = load_ptb(data_dir)
    tokenizer = build_tokenizer(ptb["train"]["text"], vocab_size=PTB_VOCAB_SIZE)
    if quick:
        # Enough for a few batches of every kind; the vocabulary still comes from all of train.
        ptb["train"] = ptb["train"].select(range(2000))
        ptb["test"] = ptb["test"].select(range(1000))
    splits = tokenize_corpus(ptb, tokenizer, max_length=128)
    return Corpus(tokenizer, splits)


def collate(dataset: Any, groups: Sequence[Sequence[int]], pad_token_id: int) -> list[Batch]:
    collator = TextCollator(pad_token_id)
    return [collator(dataset.select(indices)) for indices in groups]


def target_tokens(batch: Batch) -> int:
    return int(batch["attention_mask"][:, 1:].sum())


def middle_batches(dataset: Any, batch_size: int, count: int, pad_token_id: int) -> list[Batch]:
    """`count` length-bucketed batches from the middle of the length distribution, so that
    a small sample has typical sentence lengths."""
    groups = length_bucketed_batches(dataset["length"], batch_size)
    start = max(0, len(groups) // 2 - count // 2)
    return collate(dataset, groups[start : start + count], pad_token_id)


def setting_config(name: str, vocab_size: int, divisor: int = 1) -> TextVAEConfig:
    """The preset's config for a PTB-built vocabulary, its sizes divided by `divisor`."""
    sizes = ("embedding_size", "encoder_hidden_size", "decoder_hidden_size", "latent_size")
    preset = TextVAEConfig.from_preset(name)
    return TextVAEConfig.from_preset(
        name,
        vocab_size=vocab_size,
        **{size: max(1, getattr(preset, size) // divisor) for size in sizes},
    )


# --- one setting --------------------------------------------------------------------------


@dataclass
class Measurement:
    """Work done in `seconds`: `units` (tokens or sentences) and matmul `flops`."""

    seconds: float
    units: float
    flops: float
    peak_mib: float = math.nan

    @property
    def rate(self) -> float:
        return self.units / self.seconds

    def floor_rate(self, gflops: float) -> float:
        """Units/s if every counted FLOP ran at the measured matmul rate."""
        return self.units * gflops * 1e9 / self.flops

    def fraction(self, gflops: float) -> float:
        return self.rate / self.floor_rate(gflops)


class SettingBench:
    """The model, trainer and batches of one setting, and the measurements on them."""

    def __init__(self, name: str, corpus: Corpus, budget: Budget, workdir: str) -> None:
        self.name, self.budget = name, budget
        self.config = setting_config(name, len(corpus.tokenizer), budget.size_divisor)
        self.flops = FlopCounter(self.config)
        pad = self.config.pad_token_id
        splits = corpus.splits
        torch.manual_seed(0)
        self.model = TextVAEModel(self.config)
        self.model.tokenizer = corpus.tokenizer

        groups = length_bucketed_batches(
            splits["train"]["length"], BATCH_SIZE, shuffle=True, seed=0
        )
        needed = max(
            budget.val_steps[name],
            budget.warmup + budget.steps,
            (budget.aggressive_outer + 1) * (budget.inner_steps + 1),
        )
        self.train_batches = collate(splits["train"], groups[:needed], pad)
        self._next_train = 0

        valid = splits["validation"].select(range(budget.val_sentences[name]))
        self.valid_batches = collate(
            valid, length_bucketed_batches(valid["length"], BATCH_SIZE), pad
        )
        test = splits["test"]
        if budget.mi_sentences is not None:
            test = test.select(range(budget.mi_sentences))
        self.test_batches = collate(
            test, length_bucketed_batches(test["length"], EVAL_BATCH_SIZE), pad
        )
        iw_size = min(BATCH_SIZE, budget.iw_sentences[name])
        self.iw_batches = middle_batches(
            splits["test"], iw_size, math.ceil(budget.iw_sentences[name] / iw_size), pad
        )

        args = VAETrainingArguments(
            output_dir=os.path.join(workdir, name),
            objective="aggressive",
            per_device_train_batch_size=BATCH_SIZE,
            learning_rate=LEARNING_RATE,
            max_grad_norm=MAX_GRAD_NORM,
            # Exactly `inner_steps` per update: the stopping rule's window never closes, so
            # every measurement does the same work.
            aggressive_max_inner_steps=budget.inner_steps,
            aggressive_window=budget.inner_steps + 1,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        self.trainer = VAETrainer(
            model=self.model,
            args=args,
            train_dataset=splits["train"],
            eval_dataset=splits["validation"],
            data_collator=TextCollator(pad),
        )
        self.trainer.create_optimizer_and_scheduler(num_training_steps=10**6)
        # The inner loop draws its batches from here: pre-collated, and counted.
        self._inner_source: Callable[[], Batch] = self.next_train_batch
        self._inner_batches: list[Batch] = []
        self.trainer._random_training_batch = self._inner_batch

    # --- batches ----------------------------------------------------------------------

    def next_train_batch(self) -> Batch:
        batch = self.train_batches[self._next_train % len(self.train_batches)]
        self._next_train += 1
        return batch

    def _inner_batch(self) -> Batch:
        batch = self._inner_source()
        self._inner_batches.append(batch)
        return batch

    # --- training ---------------------------------------------------------------------

    def train_step(self, batch: Batch, decoder_only: bool = False) -> None:
        """One update: forward (under autocast when set up), backward, clip, AdamW step.

        With `decoder_only`, the encoder's gradients are dropped before the step, as the
        trainer does for the update that follows an aggressive inner loop.
        """
        trainer, model = self.trainer, self.model
        model.train()
        # The trainer's own loss: the fused output layer, the objective, free bits.
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        if decoder_only:
            trainer.callback_handler.on_pre_optimizer_step(
                trainer.args, trainer.state, trainer.control
            )
        nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer.state.global_step += 1

    def measure_elbo(self, bf16: bool, steps: int, warmup: int) -> Measurement:
        with autocast_forward(self.model, bf16):
            for _ in range(warmup):
                self.train_step(self.next_train_batch())
            batches = [self.next_train_batch() for _ in range(steps)]
            with PeakMemory() as memory:
                start = time.perf_counter()
                for batch in batches:
                    self.train_step(batch)
                seconds = time.perf_counter() - start
        return Measurement(
            seconds,
            sum(map(target_tokens, batches)),
            sum(map(self.flops.training, batches)),
            memory.peak_mib,
        )

    def measure_against_plain(self, bf16: bool, steps: int, warmup: int) -> dict[str, float]:
        """Target tokens/s of vaehub's training step and of `PlainTextVAE`'s (same sizes,
        AdamW, clip) on the same batches, interleaved step by step so that a slow spell of
        the machine hits both."""
        torch.manual_seed(0)
        plain = PlainTextVAE(self.config).train()
        # The optimiser the trainer builds (adamw_torch_fused): the models are compared, not it.
        optimizer = torch.optim.AdamW(plain.parameters(), lr=LEARNING_RATE, fused=True)

        def plain_step(batch: Batch) -> None:
            with autocast(bf16):
                loss = plain(batch["input_ids"], batch["attention_mask"])
            loss.backward()
            nn.utils.clip_grad_norm_(plain.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        batches = [self.next_train_batch() for _ in range(warmup + steps)]
        seconds = {"vaehub": 0.0, "plain": 0.0}
        steps_in_turn = (("vaehub", self.train_step), ("plain", plain_step))
        with autocast_forward(self.model, bf16):
            for i, batch in enumerate(batches):
                for name, step in steps_in_turn[:: 1 if i % 2 else -1]:
                    start = time.perf_counter()
                    step(batch)
                    if i >= warmup:
                        seconds[name] += time.perf_counter() - start
        tokens = sum(map(target_tokens, batches[warmup:]))
        return {
            "vaehub_tokens_per_s": tokens / seconds["vaehub"],
            "plain_tokens_per_s": tokens / seconds["plain"],
            "ratio": seconds["plain"] / seconds["vaehub"],
            "steps": steps,
        }

    @contextlib.contextmanager
    def inner_steps(self, steps: int) -> Iterator[None]:
        """Make the inner loop take exactly `steps` steps: its stopping rule's window
        never closes before `aggressive_max_inner_steps`."""
        args = self.trainer.args
        saved = args.aggressive_max_inner_steps, args.aggressive_window
        args.aggressive_max_inner_steps, args.aggressive_window = steps, steps + 1
        try:
            yield
        finally:
            args.aggressive_max_inner_steps, args.aggressive_window = saved

    def aggressive_update(self, batch: Batch) -> list[Batch]:
        """Inner loop then decoder update on `batch`; returns the inner steps' batches."""
        self._inner_batches = [batch]
        self.trainer.aggressive_inner_loop(batch)
        self.train_step(batch, decoder_only=True)
        return self._inner_batches

    def measure_aggressive(self, bf16: bool, outer: int) -> Measurement:
        """Target tokens/s of aggressive training, every inner and outer pass counted."""
        self._inner_source = self.next_train_batch
        with autocast_forward(self.model, bf16):
            with self.inner_steps(1):
                self.aggressive_update(self.next_train_batch())
            tokens = flops = seconds = 0.0
            for _ in range(outer):
                batch = self.next_train_batch()
                start = time.perf_counter()
                inner = self.aggressive_update(batch)
                seconds += time.perf_counter() - start
                tokens += target_tokens(batch) + sum(map(target_tokens, inner))
                flops += self.flops.training(batch) + sum(map(self.flops.inner_step, inner))
        return Measurement(seconds, tokens, flops)

    def measure_inner_fraction(self, bf16: bool, rounds: int = 2) -> dict[str, float]:
        """Seconds of one inner step and of one full step on the same batch (best of
        `rounds`, alternating so that a slow spell of the machine hits both)."""
        # A batch of median size: short sentences would exaggerate per-step overheads.
        by_size = sorted(self.train_batches, key=target_tokens)
        batch = by_size[len(by_size) // 2]
        self._inner_source = lambda: batch
        n = self.budget.fraction_steps
        inner = full = math.inf
        with autocast_forward(self.model, bf16):
            self.train_step(batch)
            with self.inner_steps(1):
                self.trainer.aggressive_inner_loop(batch)
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(n):
                    self.train_step(batch)
                full = min(full, (time.perf_counter() - start) / n)
                start = time.perf_counter()
                with self.inner_steps(n):
                    steps = self.trainer.aggressive_inner_loop(batch)
                inner = min(inner, (time.perf_counter() - start) / steps)
        self._inner_source = self.next_train_batch
        return {
            "inner_step_s": inner,
            "full_step_s": full,
            "fraction": inner / full,
            "analytic_fraction": self.flops.inner_step(batch) / self.flops.training(batch),
            "batch_tokens": target_tokens(batch),
        }

    def measure_svi(self, bf16: bool, rounds: int = 2) -> dict[str, float]:
        """Seconds of one SVI step on λ (`vaehub.latent.svi.refine`, every weight frozen), of one
        SA-VAE update (K steps, backpropagated, then the update) and of one plain ELBO step,
        on the same batch (best of `rounds`)."""
        by_size = sorted(self.train_batches, key=target_tokens)
        batch = by_size[len(by_size) // 2]
        trainer, model = self.trainer, self.model
        k = trainer.args.sa_vae_steps
        n = self.budget.fraction_steps

        # As a `--bf16 True` run refines: under the forward's autocast, λ in float32.
        def sa_vae_step() -> None:
            model.train()
            with autocast(bf16):
                _, loss = trainer.semi_amortised_loss(model, batch)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)

        def svi_steps(steps: int) -> None:
            model.train()
            with autocast(bf16):
                parameters = model.posterior_parameters(**batch).detached()
                svi.refine(model, model.checked_batch(**batch), parameters, steps)

        svi_step = full = sa_step = math.inf
        with autocast_forward(model, bf16):
            self.train_step(batch)
            svi_steps(1)
            sa_vae_step()
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(n):
                    self.train_step(batch)
                full = min(full, (time.perf_counter() - start) / n)
                start = time.perf_counter()
                svi_steps(n)
                svi_step = min(svi_step, (time.perf_counter() - start) / n)
                start = time.perf_counter()
                sa_vae_step()
                sa_step = min(sa_step, time.perf_counter() - start)
        return {
            "svi_step_s": svi_step,
            "full_step_s": full,
            "fraction": svi_step / full,
            "sa_vae_steps": k,
            "sa_vae_update_s": sa_step,
            "sa_vae_ratio": sa_step / full,
            "batch_tokens": target_tokens(batch),
        }

    # --- evaluation -------------------------------------------------------------------

    def measure_iw(self, bf16: bool, samples: int) -> Measurement:
        self.model.eval()
        torch.manual_seed(0)
        with PeakMemory() as memory, autocast(bf16):
            start = time.perf_counter()
            for batch in self.iw_batches:
                importance_weighted_log_likelihood(
                    self.model, batch, samples, self.budget.max_units
                )
            seconds = time.perf_counter() - start
        sentences = sum(len(b["input_ids"]) for b in self.iw_batches)
        flops = sum(self.flops.iw_nll(b, samples) for b in self.iw_batches)
        return Measurement(seconds, sentences, flops, memory.peak_mib)

    def iw_chunk(self) -> dict[str, int]:
        """How `importance_weighted_log_likelihood` splits the K samples of one batch."""
        units = target_tokens(self.iw_batches[0])
        per_chunk = max(1, self.budget.max_units // max(1, units))
        # The float32 logits of one chunk, the largest tensor of the computation.
        logits_mib = per_chunk * units * self.config.vocab_size * 4 / 2**20
        return {"batch_tokens": units, "samples_per_chunk": per_chunk, "logits_mib": logits_mib}

    def measure_mi_au(
        self, bf16: bool, reconstruction: bool = False
    ) -> tuple[Measurement, dict[str, Any]]:
        """One `evaluate_vae` pass for MI and AU: encoder only (the default), or with the
        reconstruction term's decoder pass as well (what it cost before the encoder-only
        path)."""
        torch.manual_seed(0)
        with PeakMemory() as memory, autocast(bf16):
            start = time.perf_counter()
            results = evaluate_vae(
                self.model, self.test_batches, iw_samples=None, reconstruction=reconstruction
            )
            seconds = time.perf_counter() - start
        sentences = sum(len(b["input_ids"]) for b in self.test_batches)
        flops = sum(
            self.flops.encoder(b) + (self.flops.decoder(b) if reconstruction else 0)
            for b in self.test_batches
        )
        return Measurement(seconds, sentences, flops, memory.peak_mib), results

    def validation_nll(self, bf16: bool) -> Tensor:
        """`(sentences,)` IW-NLL of the validation sentences; same seed for both dtypes,
        so both draw the same noise for their samples."""
        self.model.eval()
        torch.manual_seed(1234)
        with autocast(bf16):
            return -torch.cat(
                [
                    importance_weighted_log_likelihood(
                        self.model, b, self.budget.val_samples, self.budget.max_units
                    ).float()
                    for b in self.valid_batches
                ]
            )

    def run(self, log: Callable[[str], None]) -> dict[str, Any]:
        b, name = self.budget, self.name
        out: dict[str, Any] = {"setting": name}
        out["flops_per_target_token"] = self.flops.per_target_token(self.test_batches)
        out["iw_chunk"] = self.iw_chunk()

        log(f"[{name}] float32 ELBO steps ({b.steps} timed, {b.val_steps[name]} in all)")
        out["elbo_fp32"] = self.measure_elbo(False, b.steps, b.warmup)
        with autocast_forward(self.model, False):
            for _ in range(b.val_steps[name] - b.steps - b.warmup):
                self.train_step(self.next_train_batch())
        log(f"[{name}] validation IW-NLL, float32 and bfloat16")
        nll32, nll16 = self.validation_nll(False), self.validation_nll(True)
        out["validation"] = {
            "trained_steps": b.val_steps[name],
            "sentences": len(nll32),
            "samples": b.val_samples,
            "nll_fp32": nll32.mean().item(),
            "nll_bf16": nll16.mean().item(),
            "gap": (nll16 - nll32).mean().item(),
            "mean_abs_gap": (nll16 - nll32).abs().mean().item(),
        }
        log(f"[{name}] bfloat16 ELBO steps")
        out["elbo_bf16"] = self.measure_elbo(True, b.steps, b.warmup)
        for bf16, tag in ((False, "fp32"), (True, "bf16")):
            log(f"[{name}] vaehub against the plain PyTorch model, {tag}")
            out[f"plain_{tag}"] = self.measure_against_plain(bf16, b.steps, b.warmup)
        for bf16, tag in ((False, "fp32"), (True, "bf16")):
            log(f"[{name}] aggressive, {tag}")
            out[f"aggressive_{tag}"] = self.measure_aggressive(bf16, b.aggressive_outer)
            out[f"inner_{tag}"] = self.measure_inner_fraction(bf16)
            log(f"[{name}] SVI step and SA-VAE update, {tag}")
            out[f"svi_{tag}"] = self.measure_svi(bf16)
        for bf16, tag in ((False, "fp32"), (True, "bf16")):
            log(f"[{name}] IW-NLL K={b.iw_samples} and K={b.iw_samples_small}, {tag}")
            out[f"iw_{tag}"] = self.measure_iw(bf16, b.iw_samples)
            out[f"iw_small_{tag}"] = self.measure_iw(bf16, b.iw_samples_small)
        for bf16, tag in ((False, "fp32"), (True, "bf16")):
            sentences = sum(len(x["input_ids"]) for x in self.test_batches)
            log(f"[{name}] MI + AU on {sentences} test sentences, {tag}")
            out[f"mi_au_{tag}"], results = self.measure_mi_au(bf16)
            out[f"mi_au_full_{tag}"], _ = self.measure_mi_au(bf16, reconstruction=True)
            out[f"mi_au_{tag}_values"] = {
                "mi": results["mi"],
                "active_units": results["active_units"],
            }
        return out

    def profile(self, steps: int, bf16: bool, rows: int = 12) -> str:
        """torch.profiler table of `steps` ELBO steps, top ops by self CPU time."""
        from torch.profiler import ProfilerActivity, profile

        with autocast_forward(self.model, bf16):
            for _ in range(2):
                self.train_step(self.next_train_batch())
            batches = [self.next_train_batch() for _ in range(steps)]
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for batch in batches:
                    self.train_step(batch)
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


# --- report -------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def render_setting(out: dict[str, Any], rates: dict[str, dict[str, float]]) -> list[str]:
    r32, r16 = rates["fp32"]["best"], rates["bf16"]["best"]
    f = out["flops_per_target_token"]
    name = out["setting"]
    lines = [""]
    c = out["config"]
    sizes = (
        f"{c['embedding_size']} / {c['encoder_hidden_size']} / {c['decoder_hidden_size']}, "
        f"z = {c['latent_size']}, batch {BATCH_SIZE}"
    )
    if name == "ptb":
        title = f"PTB setting: {sizes}, PTB sentences"
    else:
        title = (
            f"Yahoo setting: {sizes} - run on PTB sentences with the PTB vocabulary "
            "(the Yahoo corpus is not available here)"
        )
    lines.append(f"== {title} (vocabulary {out['vocab_size']:,})")
    lines.append(
        "forward MFLOP per target token (PTB test, {:.1f} targets/sentence): encoder LSTM "
        "{:.2f} + decoder LSTM {:.2f} + output layer {:.2f} + z layers {:.3f} = {:.2f}".format(
            f["targets_per_sentence"],
            f["encoder_lstm"] / 1e6,
            f["decoder_lstm"] / 1e6,
            f["output_layer"] / 1e6,
            f["linear_z"] / 1e6,
            f["total"] / 1e6,
        )
    )
    lines.append(
        "  training = 3x forward; aggressive inner step = 3x encoder + 2x decoder forward; "
        "IW-NLL = encoder once + K x decoder ({:.1f} MFLOP/sentence at K=1)".format(
            f["decoder"] * f["targets_per_sentence"] / 1e6
        )
    )
    header = (
        f"{'measurement':<36}{'float32':>11}{'floor':>11}{'of floor':>10}"
        f"{'bf16':>11}{'floor':>11}{'of floor':>10}{'bf16/fp32':>11}"
    )
    lines += [header, "-" * len(header)]

    def rate_row(label: str, key: str, digits: int = 0) -> None:
        a, b = out[f"{key}_fp32"], out[f"{key}_bf16"]
        lines.append(
            f"{label:<36}{_fmt(a.rate, digits):>11}{_fmt(a.floor_rate(r32), digits):>11}"
            f"{_pct(a.fraction(r32)):>10}{_fmt(b.rate, digits):>11}"
            f"{_fmt(b.floor_rate(r16), digits):>11}{_pct(b.fraction(r16)):>10}"
            f"{b.rate / a.rate:>10.2f}x"
        )

    def plain_row(label: str, a: str, b: str, ratio: str = "") -> None:
        lines.append(f"{label:<36}{a:>11}{'':>11}{'':>10}{b:>11}{'':>11}{'':>10}{ratio:>11}")

    rate_row("training ELBO, target tokens/s", "elbo")
    p32, p16 = out["plain_fp32"], out["plain_bf16"]
    plain_row(
        "  plain PyTorch model, tokens/s",
        _fmt(p32["plain_tokens_per_s"]),
        _fmt(p16["plain_tokens_per_s"]),
        f"{p16['plain_tokens_per_s'] / p32['plain_tokens_per_s']:.2f}x",
    )
    plain_row(
        "  vaehub / plain, same batches",
        f"{p32['ratio']:.2f}x",
        f"{p16['ratio']:.2f}x",
    )
    rate_row("training aggressive, target tokens/s", "aggressive")
    i32, i16 = out["inner_fp32"], out["inner_bf16"]
    plain_row(
        "inner step / full step (same batch)",
        _pct(i32["fraction"]),
        _pct(i16["fraction"]),
        f"FLOPs {_pct(i32['analytic_fraction'])}",
    )
    plain_row(
        f"  ms per inner / full step ({i32['batch_tokens']} tok.)",
        f"{1e3 * i32['inner_step_s']:.0f}/{1e3 * i32['full_step_s']:.0f}",
        f"{1e3 * i16['inner_step_s']:.0f}/{1e3 * i16['full_step_s']:.0f}",
    )
    s32, s16 = out["svi_fp32"], out["svi_bf16"]
    plain_row("SVI step / full step (same batch)", _pct(s32["fraction"]), _pct(s16["fraction"]))
    plain_row(
        f"  ms per SVI / full step ({s32['batch_tokens']} tok.)",
        f"{1e3 * s32['svi_step_s']:.0f}/{1e3 * s32['full_step_s']:.0f}",
        f"{1e3 * s16['svi_step_s']:.0f}/{1e3 * s16['full_step_s']:.0f}",
    )
    plain_row(
        f"  SA-VAE update (K={s32['sa_vae_steps']}) / full step",
        f"{s32['sa_vae_ratio']:.1f}x",
        f"{s16['sa_vae_ratio']:.1f}x",
    )
    k, k_small = out["iw_samples"], out["iw_samples_small"]
    rate_row(f"IW-NLL K={k}, sentences/s", "iw", 2)
    chunk = out["iw_chunk"]
    for key, samples in (("iw_small", k_small), ("iw", k)):
        plain_row(
            f"IW-NLL K={samples} peak memory, MiB",
            _fmt(out[f"{key}_fp32"].peak_mib),
            _fmt(out[f"{key}_bf16"].peak_mib),
        )
    lines.append(
        f"  ({out['iw_sentences']} test sentences of median length; chunks of "
        f"{chunk['samples_per_chunk']} samples x {chunk['batch_tokens']} tokens, "
        f"max_units={out['max_units']}: {chunk['logits_mib']:,.0f} MiB of float32 logits)"
    )
    rate_row(f"MI + AU, {out['mi_au_fp32'].units:.0f} sentences, sent./s", "mi_au")
    plain_row(
        "  MI+AU s, encoder only/with decoder",
        f"{out['mi_au_fp32'].seconds:.1f}/{out['mi_au_full_fp32'].seconds:.1f}",
        f"{out['mi_au_bf16'].seconds:.1f}/{out['mi_au_full_bf16'].seconds:.1f}",
    )
    plain_row(
        "  MI (nats) / active units",
        "{:.2f} / {}".format(*out["mi_au_fp32_values"].values()),
        "{:.2f} / {}".format(*out["mi_au_bf16_values"].values()),
    )
    plain_row(
        "training peak memory, MiB",
        _fmt(out["elbo_fp32"].peak_mib),
        _fmt(out["elbo_bf16"].peak_mib),
    )
    plain_row(
        "MI + AU peak memory, MiB",
        _fmt(out["mi_au_fp32"].peak_mib),
        _fmt(out["mi_au_bf16"].peak_mib),
    )
    v = out["validation"]
    plain_row(
        f"validation NLL/sentence, K={v['samples']}",
        f"{v['nll_fp32']:.3f}",
        f"{v['nll_bf16']:.3f}",
        f"{v['gap']:+.3f}",
    )
    lines.append(
        f"  (model trained {v['trained_steps']} float32 ELBO steps; {v['sentences']} validation "
        f"sentences; mean |per-sentence gap| {v['mean_abs_gap']:.3f} nats)"
    )
    return lines


def check_targets(out: dict[str, Any], rates: dict[str, dict[str, float]]) -> list[str]:
    r32, r16 = rates["fp32"]["best"], rates["bf16"]["best"]
    name = out["setting"]
    checks = []

    def check(passed: bool, text: str) -> None:
        checks.append(f"  [{'PASS' if passed else 'FAIL'}] {name}: {text}")

    for key, label in (("elbo", "training"), ("iw", "IW-NLL")):
        fraction = out[f"{key}_fp32"].fraction(r32)
        check(
            fraction >= TARGET_FLOOR_FRACTION[key],
            f"float32 {label} at {_pct(fraction)} of its floor "
            f"(target >= {_pct(TARGET_FLOOR_FRACTION[key])})",
        )
    fraction = out["elbo_bf16"].fraction(r16)
    check(
        fraction >= TARGET_BF16_TRAIN_FLOOR,
        f"bf16 training at {_pct(fraction)} of the bf16 matmul floor "
        f"(target >= {_pct(TARGET_BF16_TRAIN_FLOOR)})",
    )
    for key, label, target in (
        ("elbo", "training tokens/s", TARGET_BF16_TRAIN_SPEEDUP),
        ("iw", "IW-NLL rate", TARGET_BF16_IW_SPEEDUP),
    ):
        speedup = out[f"{key}_bf16"].rate / out[f"{key}_fp32"].rate
        # A speed-up above the ratio of the two matmul rates is out of any code's reach here.
        reach = "" if r16 / r32 >= target else f"; this CPU's bf16 matmul is {r16 / r32:.2f}x"
        check(
            speedup >= target,
            f"bf16 {label} {speedup:.2f}x float32 (target >= {target}x{reach})",
        )
    for tag in ("fp32", "bf16"):
        ratio = out[f"plain_{tag}"]["ratio"]
        check(
            ratio >= TARGET_PLAIN_RATIO,
            f"{tag} training step {ratio:.2f}x the plain PyTorch model's tokens/s on the same "
            f"batches (target >= {TARGET_PLAIN_RATIO}x)",
        )
    gap = out["validation"]["gap"]
    check(
        abs(gap) <= TARGET_NLL_GAP,
        f"bf16 validation NLL {gap:+.3f} nats/sentence from float32 "
        f"(target within {TARGET_NLL_GAP})",
    )
    for kind, label in (("inner", "aggressive inner step"), ("svi", "SVI step")):
        for tag in ("fp32", "bf16"):
            fraction = out[f"{kind}_{tag}"]["fraction"]
            flops = out[f"{kind}_{tag}"].get("analytic_fraction", 0.0)
            reach = (
                f"; its matmul FLOPs alone are {_pct(flops)}"
                if flops > TARGET_INNER_FRACTION
                else ""
            )
            check(
                fraction <= TARGET_INNER_FRACTION,
                f"{tag} {label} {_pct(fraction)} of a full step "
                f"(target <= {_pct(TARGET_INNER_FRACTION)}{reach})",
            )
    for tag in ("fp32", "bf16"):
        speedup = out[f"mi_au_full_{tag}"].seconds / out[f"mi_au_{tag}"].seconds
        check(
            speedup >= TARGET_MI_AU_SPEEDUP,
            f"{tag} MI + AU pass, encoder only, {speedup:.2f}x faster than with the decoder "
            f"(target >= {TARGET_MI_AU_SPEEDUP}x)",
        )
    for tag in ("fp32", "bf16"):
        small, large = out[f"iw_small_{tag}"].peak_mib, out[f"iw_{tag}"].peak_mib
        growth = large / max(small, 1.0)
        check(
            large <= max(TARGET_MEMORY_GROWTH * small, small + MEMORY_NOISE_MIB),
            f"{tag} IW-NLL peak memory {large:,.0f} MiB at K={out['iw_samples']} vs "
            f"{small:,.0f} MiB at K={out['iw_samples_small']} ({growth:.2f}x; bounded by "
            f"the chunk when <= {TARGET_MEMORY_GROWTH}x or +{MEMORY_NOISE_MIB:.0f} MiB)",
        )
    return checks


def to_json(value: Any) -> Any:
    if isinstance(value, Measurement):
        return {
            "seconds": value.seconds,
            "units": value.units,
            "flops": value.flops,
            "rate": value.rate,
            "peak_mib": None if math.isnan(value.peak_mib) else value.peak_mib,
        }
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def add_floors(out: dict[str, Any], rates: dict[str, dict[str, float]]) -> None:
    for key, value in list(out.items()):
        if isinstance(value, Measurement):
            rate = rates["bf16" if key.endswith("bf16") else "fp32"]["best"]
            out[key] = to_json(value) | {
                "floor_rate": value.floor_rate(rate),
                "fraction_of_floor": value.fraction(rate),
            }


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


# --- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", choices=("ptb", "yahoo"), default=["ptb", "yahoo"])
    parser.add_argument("--steps", type=int, default=None, help="timed ELBO steps (default 20)")
    parser.add_argument("--quick", action="store_true", help="tiny everything: a smoke run")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="only profile N ELBO steps of the first setting (float32 and bf16) and exit",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not cpu_supports_bf16():
        raise SystemExit(
            "This benchmark sets float32 against bfloat16 throughout, and this CPU has no "
            f"bfloat16 instructions (torch sees {torch.backends.cpu.get_cpu_capability()}; "
            "AVX512-BF16 or AMX is needed). Run it on a CPU that has them."
        )
    torch.set_num_threads(args.threads)
    budget = quick_budget() if args.quick else Budget()
    if args.steps is not None:
        budget.steps = args.steps

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    log(f"loading PTB from {args.data_dir}")
    corpus = load_corpus(args.data_dir, args.quick)
    with tempfile.TemporaryDirectory() as workdir:
        if args.profile:
            bench = SettingBench(args.settings[0], corpus, budget, workdir)
            for bf16 in (False, True):
                print(
                    f"\n== {args.settings[0]}: {args.profile} ELBO steps, "
                    f"{'bf16 autocast' if bf16 else 'float32'}, top ops by self CPU time"
                )
                print(bench.profile(args.profile, bf16))
            return {}

        configs = [
            setting_config(s, len(corpus.tokenizer), budget.size_divisor) for s in args.settings
        ]
        typical = BATCH_SIZE * 22  # a PTB batch holds ~22 target tokens per sentence
        shapes = matmul_shapes(configs, typical)
        log("measuring torch.mm rates")
        rates = {
            "fp32": measure_matmul_rate(torch.float32, shapes),
            "bf16": measure_matmul_rate(torch.bfloat16, shapes),
        }
        results = []
        for name in args.settings:
            bench = SettingBench(name, corpus, budget, workdir)
            out = bench.run(log)
            out |= {
                "vocab_size": bench.config.vocab_size,
                "config": {
                    key: getattr(bench.config, key)
                    for key in (
                        "embedding_size",
                        "encoder_hidden_size",
                        "decoder_hidden_size",
                        "latent_size",
                    )
                },
                "iw_samples": budget.iw_samples,
                "iw_samples_small": budget.iw_samples_small,
                "iw_sentences": sum(len(b["input_ids"]) for b in bench.iw_batches),
                "max_units": budget.max_units,
            }
            results.append(out)
            del bench
            gc.collect()

    lines = [
        f"vaehub text VAE benchmark - {'QUICK smoke run' if args.quick else 'full run'}; "
        f"torch {torch.__version__}, {args.threads} threads, {cpu_name()}",
    ]
    if args.quick:
        lines.append(
            f"QUICK: model sizes divided by {budget.size_divisor} and tiny samples - a smoke "
            "run of the code paths, not the settings' figures"
        )
    # Timings at 2 threads on 2 cores are only the machine's own when nothing else runs.
    load_after = os.getloadavg()[0]
    lines.append(
        f"1-min load average before / after: {load_before:.2f} / {load_after:.2f}"
        + ("  (busy before start: other work shared the cores)" if load_before > 0.5 else "")
    )
    lines.append("torch.mm GFLOP/s (best of 7 after warm-up; m x k x n):")
    for shape in shapes:
        key = "x".join(map(str, shape))
        lines.append(
            f"  {key:<18} float32 {rates['fp32'][key]:8.1f}   bfloat16 {rates['bf16'][key]:8.1f}"
        )
    lines.append(
        f"  machine rate (best shape): float32 {rates['fp32']['best']:.1f}, "
        f"bfloat16 {rates['bf16']['best']:.1f} GFLOP/s - the floors use these"
    )
    checks = []
    for out in results:
        lines += render_setting(out, rates)
        checks += check_targets(out, rates)
    lines += ["", "targets:", *checks]
    lines.append(f"\n(total {time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))

    report = {
        "quick": args.quick,
        # The floors move with the host: bfloat16 matmuls run several times faster where the
        # CPU has matrix units for them than where it has only vector instructions.
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "threads": args.threads,
        "load_average": [load_before, load_after],
        "matmul_gflops": rates,
    }
    report["settings"] = []
    for out in results:
        add_floors(out, rates)
        report["settings"].append(to_json(out))
    report["targets"] = checks
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
