"""The main job, `vaehub demo`: what a text VAE whose code is used writes, then posterior
collapse and its cure on the embedded corpus.

It starts with the flagship PTB checkpoint shipped in `model_cards/` (`show_flagship`):
loaded offline through `AutoModel`, it writes sentences from the prior, reconstructs three
held-out PTB sentences and interpolates between two, with its default decoding. Then it
generates He et al.'s synthetic data (no files needed) and trains the same small text VAE
(2-d latent) once per recipe on the CPU — by default with the plain ELBO and with free
bits — printing the reconstruction and KL terms as it goes. Then it prints one table of
NLL, KL, MI and active units per recipe, whether the cure keeps the code in use, sentences
decoded from prior samples and one interpolation, saves the model folders, and draws He et
al.'s posterior-mean-space figure.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from transformers import set_seed

from vaehub.data.batching import iterate_batches
from vaehub.data.sources import DATASET_NAMES
from vaehub.data.synthetic import synthetic_corpus
from vaehub.data.text import TextCollator, tokenize_corpus
from vaehub.evaluation.metrics import COLLAPSE_NATS, collapsed
from vaehub.evaluation.plots import plot_posterior_mean_space, plot_training_curves
from vaehub.evaluation.posterior_grid import posterior_mean_pairs
from vaehub.models.text.configuration_text_vae import TextVAEConfig
from vaehub.models.text.modeling_text_vae import TextVAEModel
from vaehub.models.text.tokenization import build_tokenizer
from vaehub.recipes.demo_recipes import DEFAULT_RECIPES, FLAGSHIP, RECIPES
from vaehub.recipes.train import train_and_record
from vaehub.training.arguments import VAETrainingArguments
from vaehub.utils.safe_io import write_json


@dataclass
class DemoResult:
    output_dir: str
    seconds: float
    results: dict[str, dict] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    interpolation: list[str] = field(default_factory=list)
    plot: str = ""


@dataclass
class FlagshipShow:
    """What `show_flagship` printed."""

    model: str
    seconds: float
    samples: list[str] = field(default_factory=list)
    reconstructions: list[tuple[str, str]] = field(default_factory=list)
    interpolation: list[str] = field(default_factory=list)


def show_flagship(path: str = FLAGSHIP, seed: int = 0) -> FlagshipShow | None:
    """Load a released text VAE offline and print what it writes: five prior samples, the
    reconstructions of three held-out sentences and one interpolation, all with the model's
    default decoding. The held-out sentences are those its card shows (its generation
    report's), so no data files are needed. Returns `None`, saying why, when `path` holds
    no released model."""
    from transformers import AutoModel

    from vaehub.models.results import read_generation_report

    start = time.time()
    report = read_generation_report(path) if os.path.isdir(path) else None
    if report is None:
        print(
            f"No released flagship at {path} (a folder written by `vaehub release` with its "
            "generation report): skipping what it writes. Run the demo from the repository's "
            "root, or give --flagship PATH."
        )
        return None
    model = AutoModel.from_pretrained(path).float().eval()
    metrics = model.evaluation_results.get("test", {}).get("metrics", {})
    numbers = ", ".join(
        f"{label} {metrics[key]:.{digits}f}"
        for key, label, digits in (
            ("nll", "NLL", 1),
            ("kl", "KL", 1),
            ("mi", "MI", 2),
            ("active_units", "AU", 0),
        )  # fmt: skip
        if key in metrics
    )
    print(
        f"The flagship {path}: a text VAE on Penn Treebank sentences ({numbers} on the test set)."
    )
    shown = FlagshipShow(path, 0.0)
    torch.manual_seed(seed)
    shown.samples = model.generate_sentences(num_samples=5)
    print("Five sentences decoded from z ~ p(z):")
    for sentence in shown.samples:
        print(f"  {sentence}")
    inputs = [pair["input"] for pair in report["shown"]["reconstructions"]][:3]
    print("Three held-out sentences, each followed by the decoding of its posterior mean:")
    for sentence, output in zip(inputs, model.reconstruct(inputs), strict=True):
        shown.reconstructions.append((sentence, output))
        print(f"    {sentence.strip()}\n  → {output}")
    text_a, text_b = report["shown"]["interpolation"]["inputs"]
    path_ = model.interpolate(text_a, text_b, steps=5)
    shown.interpolation = list(path_)
    print("An interpolation between the posterior means of two held-out sentences:")
    print(f"  a:     {text_a.strip()}")
    for t, sentence in zip(path_.t, path_, strict=True):
        print(f"  t={t:.2f} {sentence}")
    print(f"  b:     {text_b.strip()}")
    shown.seconds = time.time() - start
    print(f"({shown.seconds:.1f} s, loading included.)\n")
    return shown


def run_demo(
    output_dir: str = "vaehub-demo",
    num_sentences: int = 12000,
    epochs: float = 10,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
    iw_samples: int = 100,
    recipes: tuple[str, ...] = DEFAULT_RECIPES,
    show_progress: bool = True,
) -> DemoResult:
    """Train once per recipe, compare, sample, interpolate, plot and save.

    Args:
        output_dir: gets one model folder per recipe, and `posterior_mean_space.png`.
        num_sentences: synthetic sentences generated; 10% are held out for validation.
        epochs: passes over the training sentences, for each recipe.
        iw_samples: K of the importance-weighted NLL on the validation sentences.
        recipes: names in `RECIPES`; the first is the reference the others are
            compared with, the last the model that samples and interpolates.
    """
    unknown = [name for name in recipes if name not in RECIPES]
    if unknown or not recipes:
        raise ValueError(
            f"unknown demo recipe {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(RECIPES)}."
        )
    start = time.time()
    corpus = synthetic_corpus(num_sentences, seed=seed).train_test_split(test_size=0.1, seed=seed)
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer))
    data = tokenize_corpus(corpus, tokenizer, config.max_sequence_length)
    print(
        f"Synthetic corpus (He et al. 2019): {len(data['train'])} training and "
        f"{len(data['test'])} validation sentences, vocabulary {len(tokenizer)}. Its tokens "
        "are the integer ids of a random LSTM language model's vocabulary, not words: a "
        "'sentence' below is a line of such ids."
    )
    print(
        f"Text VAE: embedding {config.embedding_size}, hidden {config.decoder_hidden_size}, "
        f"latent {config.latent_size}; recipes: {', '.join(recipes)}, {epochs:g} epochs each."
    )

    result = DemoResult(output_dir, 0.0)
    models: dict[str, TextVAEModel] = {}
    for recipe in recipes:
        print(f"\n=== {recipe}: {_describe(RECIPES[recipe])} ===")
        set_seed(seed)
        model = TextVAEModel(config)
        model.tokenizer = tokenizer
        folder = os.path.join(output_dir, recipe)
        steps = math.ceil(len(data["train"]) / batch_size) * epochs
        args = VAETrainingArguments(
            output_dir=folder,
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
            **RECIPES[recipe],
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
        if args.objective == "aggressive":
            metrics["aggressive_epochs"] = len(trainer.aggressive.mi_history)
        result.results[recipe] = metrics
        plot_training_curves(trainer.state.log_history, os.path.join(folder, "training_curves.png"))
        models[recipe] = model

    print(
        f"\nValidation ({len(data['test'])} sentences; NLL importance-weighted with "
        f"K={iw_samples}; nats per sentence):"
    )
    print(f"  {'recipe':<12}{'NLL':>9}{'KL':>8}{'MI':>8}{'AU':>5}{'train s':>10}")
    for recipe, metrics in result.results.items():
        print(
            f"  {recipe:<12}{metrics['nll']:>9.2f}{metrics['kl']:>8.2f}{metrics['mi']:>8.2f}"
            f"{metrics['active_units']:>5d}{metrics['seconds']:>10.0f}"
        )
    fallen = [o for o, m in result.results.items() if collapsed(m)]
    if fallen:
        print(
            f"Collapsed: {', '.join(fallen)} (no active unit, or KL and MI both under "
            f"{COLLAPSE_NATS:g} nats): the posterior is the prior and the decoder ignores z."
        )
    reference = result.results[recipes[0]]
    for recipe in recipes[1:]:
        print(_verdict(recipe, result.results[recipe], recipes[0], reference, config))

    best = models[recipes[-1]]
    torch.manual_seed(seed)
    result.samples = best.generate_sentences(num_samples=5, do_sample=True)
    print(
        f"\nFive sentences (lines of token ids) sampled from the {recipes[-1]} model's decoder, "
        "each from its own z ~ p(z), and five training sentences to compare:"
    )
    for sentence in result.samples:
        print(f"  {sentence}")
    for sentence in corpus["train"]["text"][:5]:
        print(f"  (corpus) {sentence}")
    text_a, text_b = _far_apart(best, corpus["test"]["text"][:200])
    # Greedy, repeats allowed: the synthetic language model repeats its ids freely.
    result.interpolation = list(
        best.interpolate(text_a, text_b, steps=5, num_beams=1, no_repeat_ngram_size=0)
    )
    print(
        "Interpolation (greedy) between the posterior means of the two validation sentences "
        "whose means lie farthest apart:"
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
    summary = os.path.join(output_dir, "results.json")
    write_json(
        summary,
        {
            "recipes": {name: RECIPES[name] for name in recipes},
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
            "num_sentences": num_sentences,
            "iw_samples": iw_samples,
            "threads": torch.get_num_threads(),
            # A busy machine slows the small LSTM steps many-fold: say how busy it was.
            "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
            **{key: value for key, value in asdict(result).items() if key != "output_dir"},
        },
        indent=1,
    )
    print(
        f"\nSaved {', '.join(os.path.join(output_dir, o) for o in recipes)} (model, tokenizer, "
        f"training_curves.png), the posterior mean space plot {result.plot} and {summary}."
    )
    print(f"Wall time: {result.seconds:.0f} s.")
    return result


def _describe(recipe: dict) -> str:
    settings = ", ".join(f"{key}={value}" for key, value in recipe.items() if key != "objective")
    return recipe["objective"] + (f" ({settings})" if settings else "")


def _verdict(
    name: str, metrics: dict, reference_name: str, reference: dict, config: TextVAEConfig
) -> str:
    """One line: does `name` keep the code in use, at a likelihood no worse than the
    reference's? A cure on this data leaves the posterior not collapsed (`collapsed`, the
    rule `vaehub diagnose` uses) with every dimension active, as He et al.'s synthetic model
    has it."""
    checks = {
        "not collapsed": not collapsed(metrics),
        f"all {config.latent_size} dimensions active": metrics["active_units"]
        == config.latent_size,
        f"NLL ≤ {reference_name}'s": metrics["nll"] <= reference["nll"],
    }
    kept = [check for check, ok in checks.items() if ok]
    missed = [check for check, ok in checks.items() if not ok]
    if not missed:
        return f"{name} keeps the code in use: {'; '.join(kept)}."
    return f"{name} falls short of a cure: missed {'; '.join(missed)}" + (
        f" (met {'; '.join(kept)})." if kept else "."
    )


def _far_apart(model: TextVAEModel, sentences: list[str]) -> tuple[str, str]:
    """The two sentences whose posterior means lie farthest apart: the pair an
    interpolation has the most to show for."""
    with torch.no_grad():
        means = model.encode(sentences).mean
    distances = torch.cdist(means, means)
    first, second = divmod(int(distances.argmax()), len(sentences))
    return sentences[first], sentences[second]


def _posterior_mean_space(models: dict[str, TextVAEModel], sentences, path: str) -> str:
    """He et al. Fig. 2 for each model: mean of q(z|x) against the mean of p(z|x)."""
    means = {
        name: posterior_mean_pairs(model, iterate_batches(sentences, 50, model.config.pad_token_id))
        for name, model in models.items()
    }
    return plot_posterior_mean_space(means, path)
