"""The CUDA paths (issue 33 §3): skipped without a GPU, run by `benchmarks/gpu_check.sh`.

Training picks the GPU by itself; `--bf16` trains under bf16 autocast and `--fp16` under
float16 with transformers' gradient scaling (neither is vaehub's code: the Trainer's
accelerator does it); the aggressive inner loop and SA-VAE's refinement run on the GPU
under the same autocast; evaluation and generation follow the model's device.
"""

from __future__ import annotations

import math

import pytest
import torch

from vaehub import TextVAEConfig, TextVAEModel, build_tokenizer
from vaehub.data.synthetic import synthetic_corpus
from vaehub.data.text import TextCollator, tokenize_corpus

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def data():
    corpus = synthetic_corpus(400, seed=0, vocab_size=60).train_test_split(test_size=64, seed=0)
    tokenizer = build_tokenizer(corpus["train"]["text"])
    config = TextVAEConfig.from_preset("synthetic", vocab_size=len(tokenizer), init_range=0.1)
    return tokenizer, config, tokenize_corpus(corpus, tokenizer, config.max_sequence_length)


def train(data, tmp_path, **overrides):
    from vaehub.training.arguments import VAETrainingArguments
    from vaehub.training.trainer import VAETrainer

    tokenizer, config, tokens = data
    torch.manual_seed(0)
    model = TextVAEModel(config)
    model.tokenizer = tokenizer
    args = VAETrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=16,
        learning_rate=5e-3, report_to="none", save_strategy="no", disable_tqdm=True,
        aggressive_max_inner_steps=4, aggressive_window=2, sa_vae_steps=2, **overrides,
    )  # fmt: skip
    trainer = VAETrainer(model=model, args=args, train_dataset=tokens["train"],
                         eval_dataset=tokens["test"], data_collator=TextCollator())  # fmt: skip
    trainer.train()
    return trainer


def test_training_picks_the_gpu_by_itself(data, tmp_path):
    trainer = train(data, tmp_path)
    assert trainer.args.device.type == "cuda"
    assert next(trainer.model.parameters()).device.type == "cuda"
    # cuDNN's LSTM: the path nn.LSTM takes on CUDA when cuDNN is there.
    assert torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled


@pytest.mark.parametrize("objective", ["elbo", "aggressive", "sa_vae"])
def test_each_objective_trains_in_mixed_precision(data, tmp_path, objective):
    bf16 = torch.cuda.is_bf16_supported()
    trainer = train(data, tmp_path, objective=objective, bf16=bf16, fp16=not bf16)
    if not bf16:
        # float16 needs the gradient scaler, which transformers' accelerator holds.
        assert trainer.accelerator.scaler is not None
    assert trainer.args.bf16 == bf16
    weights = [p for p in trainer.model.parameters()]
    assert all(p.dtype == torch.float32 for p in weights)  # float32 master weights
    assert all(torch.isfinite(p).all() for p in weights)
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_loss"])
    if objective == "aggressive":
        assert trainer.aggressive.inner_steps_total > 0


def test_evaluation_refinement_and_generation_follow_the_model_to_the_gpu(data):
    from vaehub.data.batching import iterate_batches
    from vaehub.evaluation.metrics import evaluate_vae

    tokenizer, config, tokens = data
    model = TextVAEModel(config).cuda().eval()
    model.tokenizer = tokenizer
    batches = iterate_batches(tokens["test"], 32, config.pad_token_id, device="cuda")
    results = evaluate_vae(model, batches, iw_samples=10, refine_steps=2)
    assert math.isfinite(results["nll"]) and results["num_examples"] == 64
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported()):
        ids = model.generate(num_samples=4, max_new_tokens=8)
    assert ids.device.type == "cuda" and ids.shape[0] == 4
