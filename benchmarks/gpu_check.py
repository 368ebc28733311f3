"""PTB training throughput on one GPU: vaehub's `VAETrainer` (elbo, aggressive, SA-VAE) in
bf16 mixed precision against the same model in plain PyTorch (`plain_reference.py`).

Each objective trains the PTB model (256 / 256 / 256, z = 32, batch 32, SGD lr 1, clip 5:
He et al. 2019's setting) for `--steps` updates through `VAETrainer.train()`, its data
loading included; updates/s come from the Trainer's own timing. The plain model takes the
same number of steps on the same length-bucketed batches, collated beforehand, under
`torch.autocast(dtype=bfloat16)` (float16 with a `GradScaler` where the GPU has no bf16).
The figures, the GPU's name and the versions go to `--json`.

    python benchmarks/gpu_check.py --json benchmarks/results/gpu_check.json
    python benchmarks/gpu_check.py --device cpu --quick --precision fp32   # plumbing only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from plain_reference import PlainTextVAE  # noqa: E402
from shared_data import default_data_dir  # noqa: E402

from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer  # noqa: E402
from vaehub.data.batching import length_bucketed_batches  # noqa: E402
from vaehub.data.text import TextCollator, load_ptb, tokenize_corpus  # noqa: E402

BATCH_SIZE = 32


def pick_precision(device: str, asked: str) -> str:
    """bf16 where the GPU has it, else fp16 (with gradient scaling); fp32 when asked."""
    if asked != "auto":
        return asked
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp16" if device == "cuda" else "fp32"


def vaehub_rate(
    objective: str,
    data: Any,
    tokenizer: Any,
    steps: int,
    device: str,
    precision: str,
    inner_steps: int = 100,
) -> dict[str, float]:
    """Updates/s of `VAETrainer` with `objective`, from the Trainer's own clock."""
    from vaehub.training.arguments import VAETrainingArguments
    from vaehub.training.trainer import VAETrainer

    torch.manual_seed(0)
    model = TextVAEModel(TextVAEConfig.from_preset("ptb", vocab_size=len(tokenizer)))
    with tempfile.TemporaryDirectory() as output:
        args = VAETrainingArguments(
            output_dir=output, objective=objective, max_steps=steps,
            per_device_train_batch_size=BATCH_SIZE, optim="sgd", learning_rate=1.0,
            max_grad_norm=5.0, bf16=precision == "bf16", fp16=precision == "fp16",
            use_cpu=device == "cpu", report_to="none", save_strategy="no",
            eval_strategy="no", logging_steps=max(steps, 1), disable_tqdm=True,
            dataloader_num_workers=2 if device == "cuda" else 0,
            aggressive_max_inner_steps=inner_steps,
        )  # fmt: skip
        trainer = VAETrainer(
            model=model, args=args, train_dataset=data["train"],
            eval_dataset=data["validation"], data_collator=TextCollator(),
        )  # fmt: skip
        metrics = trainer.train().metrics
    runtime = metrics["train_runtime"]
    rate = {"updates_per_s": steps / runtime, "runtime_s": runtime}
    if objective == "aggressive":
        rate["inner_steps"] = trainer.aggressive.inner_steps_total
    return rate


def plain_rate(
    data: Any, tokenizer: Any, steps: int, device: str, precision: str
) -> dict[str, float]:
    """Updates/s of the plain PyTorch model on the same batches, collated beforehand."""
    torch.manual_seed(0)
    config = TextVAEConfig.from_preset("ptb", vocab_size=len(tokenizer))
    model = PlainTextVAE(config).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    collate = TextCollator()
    train = data["train"]
    groups = length_bucketed_batches(train["length"], BATCH_SIZE, shuffle=True, seed=0)
    batches = [collate(train.select(g)) for g in (groups * (steps // len(groups) + 1))[:steps]]
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]

    def step(batch: dict[str, torch.Tensor]) -> None:
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = model(**batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        scaler.step(optimizer)
        scaler.update()

    for batch in batches[: min(5, steps)]:  # warm-up: cuDNN plans, allocator
        step(batch)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches:
        step(batch)
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return {"updates_per_s": steps / elapsed, "runtime_s": elapsed}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--steps", type=int, default=300, help="updates per objective")
    parser.add_argument(
        "--aggressive-steps", type=int, default=50,
        help="updates of the aggressive run (each has up to --inner-steps encoder steps)",
    )  # fmt: skip
    parser.add_argument("--inner-steps", type=int, default=100, help="He et al.'s 100")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    parser.add_argument("--quick", action="store_true", help="2,000 sentences, for a smoke run")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    precision = pick_precision(args.device, args.precision)

    corpus = load_ptb(args.data_dir)
    # The aggressive loop measures MI on the validation split: 1,000 sentences keep it short.
    corpus["validation"] = corpus["validation"].select(range(1000))
    if args.quick:
        corpus["train"] = corpus["train"].select(range(2000))
        corpus["validation"] = corpus["validation"].select(range(100))
    tokenizer = build_tokenizer(corpus["train"]["text"])
    data = tokenize_corpus(corpus, tokenizer, 128)

    results: dict[str, Any] = {"plain_pytorch": plain_rate(data, tokenizer, args.steps,
                                                           args.device, precision)}  # fmt: skip
    for objective in ("elbo", "aggressive", "sa_vae"):
        steps = args.aggressive_steps if objective == "aggressive" else args.steps
        results[objective] = vaehub_rate(
            objective, data, tokenizer, steps, args.device, precision, args.inner_steps
        )
        results[objective]["vs_plain"] = (
            results[objective]["updates_per_s"] / results["plain_pytorch"]["updates_per_s"]
        )
        print(f"{objective:>10}: {results[objective]['updates_per_s']:.2f} updates/s "
              f"({results[objective]['vs_plain']:.2f}× plain PyTorch)", flush=True)  # fmt: skip
    report = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "precision": precision,
        "steps": args.steps,
        "aggressive_steps": args.aggressive_steps,
        "inner_steps": args.inner_steps,
        "batch_size": BATCH_SIZE,
        "quick": args.quick,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if args.device == "cuda" else None,
        "results": results,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
