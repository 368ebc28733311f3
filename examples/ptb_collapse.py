"""Posterior collapse on the Penn Treebank, and what aggressive training does about it.

Trains the same text VAE on PTB (the PTB setting, 256/256/256, z = 32, by default on the
first sentences of the training split so that it runs on a laptop CPU) once per objective,
then evaluates each on PTB test sentences: importance-weighted NLL and PPL, KL, mutual
information and active units. With the plain ELBO the KL and the active units fall to
about 0; aggressive training keeps the latents in use at an NLL no worse.

    python examples/ptb_collapse.py --data-dir ../shared/data/ptb --output-dir ptb-collapse

    # He et al.'s optimiser: plain SGD at learning rate 1.0, gradient norm clipped at 5
    python examples/ptb_collapse.py --optim sgd --learning-rate 1.0

Each model folder gets `eval_test.json` and `training.json`, from which `vaehub card`
writes its model card; `--json` writes the table's numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from transformers import set_seed

from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer, hub
from vaehub.data.batching import iterate_batches
from vaehub.data.text import TextCollator, load_ptb, tokenize_corpus
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.trainer import VAETrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data", "ptb"))
    parser.add_argument("--output-dir", default="ptb-collapse")
    parser.add_argument("--objectives", nargs="+", default=["elbo", "aggressive"])
    parser.add_argument("--train-sentences", type=int, default=10000)
    parser.add_argument("--validation-sentences", type=int, default=1000)
    parser.add_argument("--test-sentences", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument(
        "--optim",
        default="adamw_torch",
        help="any TrainingArguments optimiser; He et al. use `sgd` with --learning-rate 1.0",
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--iw-samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the numbers here")
    args = parser.parse_args()

    ptb = load_ptb(args.data_dir)
    tokenizer = build_tokenizer(ptb["train"]["text"], vocab_size=10002)
    config = TextVAEConfig.from_preset("ptb", vocab_size=len(tokenizer))
    data = tokenize_corpus(ptb, tokenizer, config.max_sequence_length)
    train = data["train"].select(range(min(args.train_sentences, len(data["train"]))))
    valid = data["validation"].select(range(args.validation_sentences))
    test = data["test"].select(range(args.test_sentences))
    print(
        f"PTB: {len(train)} training, {len(valid)} validation, {len(test)} test sentences; "
        f"vocabulary {len(tokenizer)}; {args.epochs} epochs per objective."
    )

    table = {}
    for objective in args.objectives:
        set_seed(args.seed)
        model = TextVAEModel(config)
        model.tokenizer = tokenizer
        folder = os.path.join(args.output_dir, objective)
        training_args = VAETrainingArguments(
            output_dir=folder,
            objective=objective,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=32,
            optim=args.optim,
            learning_rate=args.learning_rate,
            lr_scheduler_type="constant",
            max_grad_norm=5.0,
            logging_steps=50,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=args.seed,
            eval_strategy="epoch",
            disable_tqdm=True,
        )
        trainer = VAETrainer(
            model=model,
            args=training_args,
            train_dataset=train,
            eval_dataset=valid,
            data_collator=TextCollator(),
        )
        start = time.time()
        trainer.train()
        seconds = time.time() - start
        torch.manual_seed(args.seed)
        metrics = evaluate_vae(
            model,
            iterate_batches(test, 64, config.pad_token_id),
            iw_samples=args.iw_samples,
            show_progress=True,
        )
        metrics["train_seconds"] = seconds
        if objective == "aggressive":
            metrics["aggressive_epochs"] = len(trainer.aggressive.mi_history)
            metrics["inner_steps_per_update"] = trainer.aggressive.inner_steps_total / max(
                1, trainer.aggressive.outer_steps
            )
        model.evaluation_results["test"] = {
            "split": "test",
            "iw_samples": args.iw_samples,
            "metrics": metrics,
            "dataset": {"name": "Penn Treebank (Mikolov et al.)", "type": "ptb_text_only"},
        }
        model.training_summary = hub.training_summary(
            training_args, trainer.state, f"PTB, first {len(train)} training sentences"
        )
        model.save_pretrained(folder)  # with eval_test.json and training.json, for its card
        table[objective] = metrics
        print(
            f"{objective}: NLL {metrics['nll']:.2f}, KL {metrics['kl']:.2f}, "
            f"MI {metrics['mi']:.2f}, AU {metrics['active_units']}, {seconds:.0f} s"
        )

    print(f"\nPTB test ({len(test)} sentences), NLL importance-weighted with K={args.iw_samples}:")
    print(f"  {'objective':<12}{'NLL':>9}{'PPL':>9}{'KL':>8}{'MI':>8}{'AU':>5}{'train s':>9}")
    for objective, m in table.items():
        print(
            f"  {objective:<12}{m['nll']:>9.2f}{m['ppl']:>9.1f}{m['kl']:>8.2f}{m['mi']:>8.2f}"
            f"{m['active_units']:>5d}{m['train_seconds']:>9.0f}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(table, handle, indent=2)


if __name__ == "__main__":
    main()
