"""The main job, `vaehub demo`: a small text VAE trained on the embedded synthetic corpus.

Generates He et al.'s synthetic data (no files needed), trains the 2-d-latent text VAE
with the ELBO on the CPU, prints the reconstruction and KL terms as it goes, then
sentences decoded from prior samples and one interpolation, and saves the model folder
with a plot of the training curves.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
from transformers import TrainingArguments, set_seed

from vaehub.configuration_vae import TextVAEConfig
from vaehub.data import TextCollator, iterate_batches, synthetic_corpus, tokenize_corpus
from vaehub.metrics import evaluate_vae
from vaehub.modeling_text_vae import TextVAEModel
from vaehub.plots import plot_training_curves
from vaehub.tokenization import build_tokenizer
from vaehub.trainer import VAETrainer


@dataclass
class DemoResult:
    output_dir: str
    seconds: float
    validation: dict[str, float]
    samples: list[str]
    interpolation: list[str]


def run_demo(
    output_dir: str = "vaehub-demo",
    num_sentences: int = 12000,
    epochs: float = 8,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    seed: int = 0,
    show_progress: bool = True,
) -> DemoResult:
    """Train, sample, interpolate and save; returns what it printed.

    Args:
        output_dir: where the model folder and `training_curves.png` are written.
        num_sentences: synthetic sentences generated; 10% are held out for validation.
        epochs: passes over the training sentences.
    """
    start = time.time()
    set_seed(seed)
    corpus = synthetic_corpus(num_sentences, seed=seed).train_test_split(test_size=0.1, seed=seed)
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer))
    data = tokenize_corpus(corpus, tokenizer, config.max_sequence_length)
    model = TextVAEModel(config)
    model.tokenizer = tokenizer
    print(
        f"Synthetic corpus (He et al. 2019): {len(data['train'])} training and "
        f"{len(data['test'])} validation sentences, vocabulary {len(tokenizer)}."
    )
    print(
        f"Text VAE: embedding {config.embedding_size}, hidden {config.decoder_hidden_size}, "
        f"latent {config.latent_size}, {model.num_parameters():,} parameters; objective: ELBO."
    )

    total_steps = math.ceil(len(data["train"]) / batch_size) * epochs
    args = TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="constant",
        max_grad_norm=5.0,
        # About 25 progress lines whatever the run's length.
        logging_steps=max(1, round(total_steps / 25)),
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=seed,
        disable_tqdm=not show_progress,
        dataloader_drop_last=False,
    )
    trainer = VAETrainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        data_collator=TextCollator(config.pad_token_id),
    )
    trainer.train()

    model.eval()
    validation = evaluate_vae(model, iterate_batches(data["test"], 256, config.pad_token_id))
    print(
        f"\nValidation: reconstruction {validation['reconstruction']:.2f}, "
        f"KL {validation['kl']:.2f}, negative ELBO {validation['neg_elbo']:.2f} "
        f"nats per sentence."
    )

    if validation["kl"] < 0.1:
        print("KL ≈ 0: the posterior has collapsed onto the prior and the decoder ignores z.")

    torch.manual_seed(seed)
    samples = model.generate_sentences(num_samples=5, do_sample=True)
    print("\nFive sentences sampled from the decoder, each from its own z ~ p(z):")
    for sentence in samples:
        print(f"  {sentence}")
    text_a, text_b = corpus["test"]["text"][:2]
    interpolation = model.interpolate(text_a, text_b, steps=5)
    print("\nInterpolation between the posterior means of two validation sentences:")
    print(f"  a:      {text_a}")
    for t, sentence in zip(
        torch.linspace(0, 1, len(interpolation)).tolist(), interpolation, strict=True
    ):
        print(f"  t={t:.2f} {sentence}")
    print(f"  b:      {text_b}")

    model.save_pretrained(output_dir)
    plot = plot_training_curves(
        trainer.state.log_history, os.path.join(output_dir, "training_curves.png")
    )
    seconds = time.time() - start
    print(
        f"\nSaved the model, its tokenizer and {os.path.basename(plot)} to {output_dir}/ "
        f"({seconds:.0f} s in all). Load it with "
        f"TextVAEModel.from_pretrained({output_dir!r})."
    )
    return DemoResult(output_dir, seconds, validation, samples, interpolation)
