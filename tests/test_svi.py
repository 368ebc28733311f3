"""SVI refinement and the semi-amortised VAE (Kim et al. 2018, Algorithm 1): K = 0 is plain
training, the refined ELBO beats the amortised one, the backpropagated encoder gradient
matches finite differences, and no weight gets a gradient inside the steps."""

from __future__ import annotations

import pytest
import torch
from helpers import small_config

from vaehub import DeltaVAEConfig, DeltaVAEModel, TextVAEModel
from vaehub.data.batching import length_bucketed_batches
from vaehub.data.images import ImageCollator
from vaehub.data.text import TextCollator
from vaehub.evaluation.metrics import evaluate_vae
from vaehub.latent import svi
from vaehub.training.arguments import VAETrainingArguments, cpu_supports_bf16
from vaehub.training.trainer import VAETrainer


@pytest.fixture(scope="module")
def data(ptb_slice):
    train = ptb_slice["data"]["train"].select(range(192))
    valid = ptb_slice["data"]["validation"].select(range(64))
    return ptb_slice["tokenizer"], train, valid


def make_trainer(data, tmp_path, **overrides) -> VAETrainer:
    tokenizer, train, valid = data
    torch.manual_seed(0)
    model = TextVAEModel(small_config(len(tokenizer), init_range=0.1))
    settings = dict(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=32, learning_rate=3e-3,
        use_cpu=True, report_to="none", disable_tqdm=True, save_strategy="no",
        logging_steps=1, seed=0, max_steps=3,
    )  # fmt: skip
    settings.update(overrides)
    return VAETrainer(
        model=model,
        args=VAETrainingArguments(**settings),
        train_dataset=train,
        eval_dataset=valid,
        data_collator=TextCollator(),
    )


def weights(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_sa_vae_with_zero_steps_is_plain_training_bit_for_bit(data, tmp_path):
    plain = make_trainer(data, tmp_path / "a", objective="elbo")
    plain.train()
    semi = make_trainer(data, tmp_path / "b", objective="sa_vae", sa_vae_steps=0)
    semi.train()
    a, b = weights(plain.model), weights(semi.model)
    assert all(torch.equal(a[name], b[name]) for name in a)
    # ... and with steps, it is not.
    refined = make_trainer(data, tmp_path / "c", objective="sa_vae", sa_vae_steps=2)
    refined.train()
    c = weights(refined.model)
    assert not all(torch.equal(a[name], c[name]) for name in a)


NO_BF16 = pytest.mark.skipif(
    not torch.cuda.is_available() and not cpu_supports_bf16(),
    reason="bf16 training needs a CPU with AVX512-BF16 or AMX (or a GPU)",
)


@NO_BF16
def test_a_bf16_sa_vae_run_refines_under_its_autocast(data, tmp_path, monkeypatch):
    trainer = make_trainer(
        data, tmp_path, objective="sa_vae", sa_vae_steps=3, bf16=True, max_steps=1
    )
    dtypes, refined = [], []
    hook = trainer.model.decoder.latent_to_state.register_forward_hook(
        lambda module, inputs, output: dtypes.append(output.dtype)
    )
    refine = svi.refine

    def recording_refine(*args, **kwargs):  # the real refinement, its result kept
        refined.append(refine(*args, **kwargs))
        return refined[-1]

    monkeypatch.setattr(svi, "refine", recording_refine)
    trainer.train()
    hook.remove()
    # Three SVI steps and the update's forward pass, every one under bfloat16 autocast.
    assert dtypes == [torch.bfloat16] * 4
    # λ itself is kept in float32, where steps of η/B do not round away.
    assert refined[0].mean.dtype == refined[0].scale.dtype == torch.float32


def test_refined_elbo_beats_the_amortised_one_on_a_fixed_batch(trained_ptb_model, ptb_slice):
    model = trained_ptb_model
    valid = ptb_slice["data"]["validation"].select(range(96))
    batches = [TextCollator()([valid[i] for i in ids]) for ids in length_bucketed_batches(
        valid["length"], 48, shuffle=False)]  # fmt: skip
    torch.manual_seed(0)
    amortised = evaluate_vae(model, batches)
    torch.manual_seed(0)
    refined = evaluate_vae(model, batches, refine_steps=20)
    assert refined["refine_steps"] == 20
    assert refined["neg_elbo"] < amortised["neg_elbo"] - 0.1


def test_an_sa_vae_is_evaluated_with_the_svi_step_it_was_trained_with(data, tmp_path):
    trainer = make_trainer(
        data, tmp_path, objective="sa_vae", sa_vae_steps=3, sa_vae_lr=0.03125, max_steps=2
    )
    trainer.train()
    model, valid = trainer.model, data[2]
    metrics = trainer.evaluate()
    assert metrics["eval_refine_steps"] == 3 and metrics["eval_refine_lr"] == 0.03125
    # The same numbers from evaluate_vae given that η, and other numbers under the default.
    measured = {}
    for lr in (0.03125, 1.0):
        torch.manual_seed(trainer.args.seed)
        measured[lr] = evaluate_vae(
            model, trainer._evaluation_batches(valid), refine_steps=3, refine_lr=lr
        )
    assert measured[0.03125]["kl"] == pytest.approx(metrics["eval_kl"], rel=1e-9)
    assert measured[1.0]["kl"] != pytest.approx(metrics["eval_kl"], rel=1e-3)


def tiny_text_model() -> TextVAEModel:
    torch.manual_seed(0)
    config = small_config(
        30, embedding_size=6, encoder_hidden_size=5, decoder_hidden_size=7, latent_size=2,
        max_sequence_length=8, decoder_embedding_dropout=0.0, decoder_output_dropout=0.0,
        init_range=0.3,
    )  # fmt: skip
    return TextVAEModel(config).double().eval()


def refined_loss(model, batch, steps: int) -> torch.Tensor:
    torch.manual_seed(0)
    parameters = model.posterior_parameters(**batch)
    refined = svi.refine(
        model, batch, parameters, steps, learning_rate=0.3, max_grad_norm=1e6, create_graph=True
    )
    return model.elbo_terms(batch, refined).loss


def test_backpropagated_encoder_gradient_matches_finite_differences():
    model = tiny_text_model()
    ids = torch.tensor([[1, 5, 9, 12, 2, 0], [1, 7, 3, 2, 0, 0], [1, 4, 4, 8, 6, 2]])
    batch = model.checked_batch(ids, (ids > 0).long())
    weight = model.encoder.to_posterior.weight
    loss = refined_loss(model, batch, steps=3)
    (gradient,) = torch.autograd.grad(loss, weight)
    epsilon = 1e-5
    for index in [(0, 0), (1, 2), (3, 4)]:
        with torch.no_grad():
            weight[index] += epsilon
            up = refined_loss(model, batch, 3).item()
            weight[index] -= 2 * epsilon
            down = refined_loss(model, batch, 3).item()
            weight[index] += epsilon
        assert gradient[index].item() == pytest.approx(
            (up - down) / (2 * epsilon), rel=1e-4, abs=1e-9
        )
    # The steps matter: the gradient through them differs from the amortised one.
    (amortised,) = torch.autograd.grad(refined_loss(model, batch, steps=0), weight)
    assert not torch.allclose(gradient, amortised, rtol=1e-3)


def test_svi_steps_give_no_weight_a_gradient_and_restore_the_flags():
    model = tiny_text_model()
    ids = torch.tensor([[1, 5, 9, 12, 2], [1, 7, 3, 2, 0]])
    batch = model.checked_batch(ids, (ids > 0).long())
    model.decoder.lm_head.weight.requires_grad_(False)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    refined = svi.refine(model, batch, model.posterior_parameters(**batch), steps=4)
    assert all(p.grad is None for p in model.parameters())
    assert flags == {name: p.requires_grad for name, p in model.named_parameters()}
    assert not refined.mean.requires_grad
    # Per-example clipping: one SVI step moves no example's λ by more than η · max_norm.
    start = model.posterior_parameters(**batch).detached()
    step = svi.refine(model, batch, start, steps=1, learning_rate=1.0, max_grad_norm=0.01)
    moved = torch.cat([step.mean - start.mean, step.scale - start.scale], 1).norm(dim=1)
    assert (moved <= 0.01 + 1e-9).all()


def test_refinement_keeps_a_delta_vae_posterior_inside_its_family():
    torch.manual_seed(0)
    config = DeltaVAEConfig(
        image_size=6, latent_size=2, encoder_channels=8, encoder_layers=2, decoder_channels=8,
        decoder_layers=2, decoder_first_kernel_size=3, prior="constrained", committed_rate=2.0,
    )  # fmt: skip
    model = DeltaVAEModel(config).eval()
    x = (torch.rand(8, 1, 6, 6) > 0.5).float()
    batch = model.checked_batch(x)
    refined = svi.refine(
        model, batch, model.posterior_parameters(**batch), steps=10, learning_rate=5.0
    )
    kl = model.elbo_terms(batch, refined).kl
    assert (kl >= model.committed_rate - 1e-5).all()


@pytest.mark.parametrize("bf16", [False, pytest.param(True, marks=NO_BF16)])
def test_sa_vae_trains_the_image_vae_and_evaluates_refined(tmp_path, bf16):
    torch.manual_seed(0)
    config = DeltaVAEConfig(
        image_size=6, latent_size=2, encoder_channels=8, encoder_layers=2, decoder_channels=8,
        decoder_layers=2, decoder_first_kernel_size=3,
    )  # fmt: skip
    model = DeltaVAEModel(config)
    rows = [{"pixel_values": (torch.rand(1, 6, 6) > 0.5).float()} for _ in range(16)]
    before = weights(model)
    trainer = VAETrainer(
        model=model,
        args=VAETrainingArguments(
            output_dir=str(tmp_path), per_device_train_batch_size=8, use_cpu=True,
            report_to="none", disable_tqdm=True, save_strategy="no", max_steps=2,
            logging_steps=1, objective="sa_vae", sa_vae_steps=2, beta_schedule="linear",
            anneal_steps=4, bf16=bf16,
        ),  # fmt: skip
        train_dataset=rows,
        eval_dataset=rows,
        data_collator=ImageCollator(),
    )
    trainer.train()
    after = weights(model)
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("encoder"))
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("decoder"))
    betas = [entry["beta"] for entry in trainer.state.log_history if "beta" in entry]
    assert betas and betas[0] < 1
    assert trainer.evaluate()["eval_refine_steps"] == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sa_vae_steps": -1}, "steps=-1 is not valid"),
        ({"sa_vae_momentum": 1.0}, "momentum=1.0 is not valid"),
        ({"sa_vae_lr": 0.0}, "learning_rate=0.0 is not valid"),
    ],
)
def test_bad_sa_vae_settings_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        VAETrainingArguments(output_dir=str(tmp_path), objective="sa_vae", **overrides)


def test_one_refinement_value_under_every_name():
    from vaehub.latent.refinement import Refinement

    assert Refinement.from_record({}) == Refinement(0, 1.0, 0.5, 5.0)  # Kim et al.'s
    recorded = {"refine_steps": 5, "refine_lr": 2.0, "refine_momentum": None}
    refinement = Refinement.from_record(recorded)
    assert refinement == Refinement(5, 2.0, 0.5, 5.0)
    assert Refinement.from_record(refinement.record()) == refinement
    assert refinement.record() == {
        "refine_steps": 5, "refine_lr": 2.0, "refine_momentum": 0.5, "refine_max_grad_norm": 5.0,
    }  # fmt: skip
    assert refinement.describe().startswith("posterior refined by 5 SVI steps of η = 2")
    for bad, message in (
        (dict(steps=-1), "steps=-1"),
        (dict(steps=True), "steps=True"),
        (dict(momentum=1.0), "momentum=1.0"),
        (dict(learning_rate=float("nan")), "learning_rate=nan"),
        (dict(max_grad_norm=0), "max_grad_norm=0"),
    ):
        with pytest.raises(ValueError, match=message):
            Refinement(**bad)
