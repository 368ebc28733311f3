"""The main job, `vaehub demo`: posterior collapse and its cure on the embedded corpus.

Generates He et al.'s synthetic data (no files needed) and trains the same small text VAE
(2-d latent) twice on the CPU — with the plain ELBO and with aggressive inference-network
training — printing the reconstruction and KL terms as it goes. Then it prints one table
of NLL, KL, MI and active units per objective, sentences decoded from prior samples and
one interpolation, saves both model folders, and draws He et al.'s posterior-mean-space
figure.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import torch
from transformers import set_seed

from vaehub.configuration_vae import TextVAEConfig
from vaehub.data import TextCollator, iterate_batches, synthetic_corpus, tokenize_corpus
from vaehub.data_sources import DATASET_NAMES
from vaehub.modeling_text_vae import TextVAEModel
from vaehub.plots import plot_posterior_mean_space, plot_training_curves
from vaehub.posterior_grid import posterior_mean_pairs
from vaehub.recipe import train_and_record
from vaehub.tokenization import build_tokenizer
from vaehub.trainer import VAETrainingArguments

OBJECTIVES = ("elbo", "aggressive")


@dataclass
class DemoResult:
    output_dir: str
    seconds: float
    results: dict[str, dict] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    interpolation: list[str] = field(default_factory=list)
    plot: str = ""


def run_demo(
    output_dir: str = "vaehub-demo",
    num_sentences: int = 12000,
    epochs: float = 4,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
    iw_samples: int = 100,
    objectives: tuple[str, ...] = OBJECTIVES,
    show_progress: bool = True,
) -> DemoResult:
    """Train once per objective, compare, sample, interpolate, plot and save.

    Args:
        output_dir: gets one model folder per objective, and `posterior_mean_space.png`.
        num_sentences: synthetic sentences generated; 10% are held out for validation.
        epochs: passes over the training sentences, for each objective.
        iw_samples: K of the importance-weighted NLL on the validation sentences.
    """
    start = time.time()
    corpus = synthetic_corpus(num_sentences, seed=seed).train_test_split(test_size=0.1, seed=seed)
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer))
    data = tokenize_corpus(corpus, tokenizer, config.max_sequence_length)
    print(
        f"Synthetic corpus (He et al. 2019): {len(data['train'])} training and "
        f"{len(data['test'])} validation sentences, vocabulary {len(tokenizer)}."
    )
    print(
        f"Text VAE: embedding {config.embedding_size}, hidden {config.decoder_hidden_size}, "
        f"latent {config.latent_size}; objectives: {', '.join(objectives)}."
    )

    result = DemoResult(output_dir, 0.0)
    models: dict[str, TextVAEModel] = {}
    for objective in objectives:
        print(f"\n=== objective: {objective} ===")
        set_seed(seed)
        model = TextVAEModel(config)
        model.tokenizer = tokenizer
        folder = os.path.join(output_dir, objective)
        steps = math.ceil(len(data["train"]) / batch_size) * epochs
        args = VAETrainingArguments(
            output_dir=folder,
            objective=objective,
            num_train_epochs=epochs,
            per_device_train_batch_size=batch_size,
            learning_rate=learning_rate,
            lr_scheduler_type="constant",
            max_grad_norm=5.0,
            # About 20 progress lines whatever the run's length.
            logging_steps=max(1, round(steps / 20)),
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=seed,
            disable_tqdm=not show_progress,
            eval_iw_nll=True,
            iw_samples=iw_samples,
            per_device_eval_batch_size=100,
        )
        trainer = train_and_record(
            model,
            args,
            {"train": data["train"], "validation": data["test"]},
            TextCollator(),
            DATASET_NAMES["synthetic"],
        )
        model.eval()
        metrics = dict(model.evaluation_results["validation"]["metrics"])
        metrics["active_units"] = int(metrics["active_units"])
        metrics["seconds"] = next(
            (
                e["train_runtime"]
                for e in reversed(trainer.state.log_history)
                if "train_runtime" in e
            ),
            float("nan"),
        )
        if objective == "aggressive":
            metrics["aggressive_epochs"] = len(trainer.aggressive.mi_history)
        result.results[objective] = metrics
        plot_training_curves(trainer.state.log_history, os.path.join(folder, "training_curves.png"))
        models[objective] = model

    print(
        f"\nValidation ({len(data['test'])} sentences; NLL importance-weighted with "
        f"K={iw_samples}; nats per sentence):"
    )
    print(f"  {'objective':<12}{'NLL':>9}{'KL':>8}{'MI':>8}{'AU':>5}{'train s':>10}")
    for objective, metrics in result.results.items():
        print(
            f"  {objective:<12}{metrics['nll']:>9.2f}{metrics['kl']:>8.2f}{metrics['mi']:>8.2f}"
            f"{metrics['active_units']:>5d}{metrics['seconds']:>10.0f}"
        )
    collapsed = [o for o, m in result.results.items() if m["kl"] < 0.1]
    if collapsed:
        print(
            f"KL ≈ 0 for {', '.join(collapsed)}: the posterior collapsed onto the prior and "
            "the decoder ignores z."
        )

    best = models[objectives[-1]]
    torch.manual_seed(seed)
    result.samples = best.generate_sentences(num_samples=5, do_sample=True)
    print(
        f"\nFive sentences sampled from the {objectives[-1]} model's decoder, each from its own "
        "z ~ p(z):"
    )
    for sentence in result.samples:
        print(f"  {sentence}")
    text_a, text_b = _far_apart(best, corpus["test"]["text"][:200])
    result.interpolation = best.interpolate(text_a, text_b, steps=5)
    print(
        "Interpolation (greedy) between the posterior means of the two validation sentences "
        "farthest apart along the most used latent dimension:"
    )
    print(f"  a:      {text_a}")
    steps = torch.linspace(0, 1, len(result.interpolation)).tolist()
    for t, sentence in zip(steps, result.interpolation, strict=True):
        print(f"  t={t:.2f} {sentence}")
    print(f"  b:      {text_b}")

    result.plot = _posterior_mean_space(
        models,
        data["test"].select(range(min(100, len(data["test"])))),
        os.path.join(output_dir, "posterior_mean_space.png"),
    )
    result.seconds = time.time() - start
    print(
        f"\nSaved {', '.join(os.path.join(output_dir, o) for o in objectives)} (model, tokenizer, "
        f"training_curves.png) and the posterior mean space plot {result.plot} "
        f"({result.seconds:.0f} s in all)."
    )
    return result


def _far_apart(model: TextVAEModel, sentences: list[str]) -> tuple[str, str]:
    """The two sentences whose posterior means differ most along the dimension whose
    means vary most: the pair an interpolation has the most to show for."""
    with torch.no_grad():
        means = model.encode(sentences).mean
    dim = int(means.var(0).argmax())
    return sentences[int(means[:, dim].argmin())], sentences[int(means[:, dim].argmax())]


def _posterior_mean_space(models: dict[str, TextVAEModel], sentences, path: str) -> str:
    """He et al. Fig. 2 for each model: mean of q(z|x) against the mean of p(z|x)."""
    means = {
        name: posterior_mean_pairs(model, iterate_batches(sentences, 50, model.config.pad_token_id))
        for name, model in models.items()
    }
    return plot_posterior_mean_space(means, path)
