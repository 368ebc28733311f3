"""A short VAETrainer run for `torchrun --nproc_per_node 2` on the CPU (gloo).

Each process writes its final parameters and what it saw to OUTPUT/rank<k>.pt, so the
test can check that the ranks agree.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objective", default="elbo")
    parser.add_argument("--output", required=True)
    parser.add_argument("--gradient-accumulation-steps", type=int, default=1)
    args = parser.parse_args()

    from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
    from vaehub.data.synthetic import synthetic_corpus
    from vaehub.data.text import TextCollator, tokenize_corpus
    from vaehub.training.arguments import VAETrainingArguments
    from vaehub.training.trainer import VAETrainer

    corpus = synthetic_corpus(320, seed=0, vocab_size=60).train_test_split(test_size=64, seed=0)
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer), init_range=0.1)
    data = tokenize_corpus(corpus, tokenizer, config.max_sequence_length)
    torch.manual_seed(0)
    model = TextVAEModel(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    training_args = VAETrainingArguments(
        output_dir=os.path.join(args.output, "run"),
        objective=args.objective,
        max_steps=4,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        learning_rate=5e-3,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
        ddp_find_unused_parameters=False,
        aggressive_max_inner_steps=6,
        aggressive_window=2,
        sa_vae_steps=3,
        # Only read by their objectives: β < 1, λ for free bits, a short anneal.
        beta=0.5 if args.objective == "beta" else 1.0,
        free_bits=0.1 if args.objective == "free_bits" else 0.0,
    )
    trainer = VAETrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["test"],
        data_collator=TextCollator(),
    )
    trainer.train()
    torch.save(
        {
            "world_size": trainer.args.world_size,
            "rank": trainer.args.process_index,
            "initial": initial,
            "final": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "inner_steps": trainer.aggressive.inner_steps_total,
        },
        os.path.join(args.output, f"rank{trainer.args.process_index}.pt"),
    )
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without running interpreter teardown: gloo sometimes aborts in it after a
    # successful run ("terminate called without an active exception").
    os._exit(0)


if __name__ == "__main__":
    main()
