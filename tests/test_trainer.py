"""VAETrainer: the objectives' weighting, the aggressive loop, its rules, and resuming."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import small_config
from transformers import TrainerCallback

from vaehub import CheckpointError, TextVAEModel
from vaehub.data.text import TextCollator
from vaehub.training import arguments as arguments_module
from vaehub.training.aggressive import AggressiveState, InnerLoopStop
from vaehub.training.arguments import VAETrainingArguments, cpu_supports_bf16
from vaehub.training.trainer import VAETrainer


@pytest.fixture(scope="module")
def data(ptb_slice):
    train = ptb_slice["data"]["train"].select(range(320))
    valid = ptb_slice["data"]["validation"].select(range(64))
    return ptb_slice["tokenizer"], train, valid


def make_trainer(data, tmp_path, seed=0, init_seed=0, callbacks=(), **overrides) -> VAETrainer:
    tokenizer, train, valid = data
    torch.manual_seed(init_seed)
    model = TextVAEModel(small_config(len(tokenizer), init_range=0.1))
    model.tokenizer = tokenizer
    settings = dict(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        logging_steps=1,
        seed=seed,
        aggressive_max_inner_steps=6,
        aggressive_window=3,
    )
    settings.update(overrides)
    return VAETrainer(
        model=model,
        args=VAETrainingArguments(**settings),
        train_dataset=train,
        eval_dataset=valid,
        data_collator=TextCollator(),
        callbacks=list(callbacks),
    )


def parameters(module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if not torch.equal(before[name], after[name])}


# --- arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"objective": "vampprior"}, "objective='vampprior'"),
        ({"objective": "elbo", "beta": 0.5}, "beta=0.5 is used only by objective='beta'"),
        ({"objective": "elbo", "beta_schedule": "linear"}, "use objective='anneal'"),
        ({"objective": "anneal", "beta_schedule": "constant"}, "needs a rising schedule"),
        ({"objective": "anneal", "beta_schedule": "cosine"}, "beta_schedule='cosine'"),
        ({"objective": "anneal", "anneal_steps": 5, "anneal_epochs": 1.0}, "not both"),
        ({"free_bits": -0.5}, "free_bits=-0.5"),
        ({"objective": "free_bits"}, "objective='free_bits' needs λ > 0"),
        ({"objective": "free_bits", "free_bits": 0.5, "beta_schedule": "sigmoid"}, "anneal"),
        ({"aggressive_window": 0}, "aggressive_window=0"),
        ({"aggressive_check_steps": 0}, "aggressive_check_steps=0"),
        ({"objective": "anneal", "anneal_steps": 0}, "anneal_steps=0 is not valid"),
        ({"objective": "anneal", "anneal_steps": -5}, "anneal_steps=-5 is not valid"),
        ({"objective": "anneal", "anneal_epochs": -1.0}, "anneal_epochs=-1.0 is not valid"),
        ({"objective": "anneal", "anneal_epochs": 0.0}, "anneal_epochs=0.0 is not valid"),
        ({"objective": "anneal", "anneal_beta_start": 2.0}, "beta_start=2.0"),
        ({"objective": "capacity"}, "objective='capacity' needs a rate target"),
        ({"objective": "capacity", "capacity": -3.0}, "not -3.0"),
        ({"objective": "elbo", "capacity": 5.0}, "capacity=5.0 is used only by"),
        ({"objective": "capacity", "capacity": 5.0, "capacity_weight": 0.0}, "γ > 0"),
        ({"early_stopping_patience": 0}, "early_stopping_patience=0"),
        ({"early_stopping_patience": 2}, "needs --load_best_model_at_end True"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        VAETrainingArguments(output_dir=str(tmp_path), use_cpu=True, **overrides)


@pytest.mark.skipif(
    torch.cuda.is_available() or not cpu_supports_bf16(),
    reason="checks the path of a CPU-only machine whose CPU has bfloat16 instructions",
)
def test_bf16_on_a_cpu_only_machine_trains_on_the_cpu(tmp_path):
    args = VAETrainingArguments(output_dir=str(tmp_path), bf16=True)
    assert args.use_cpu and args.device.type == "cpu"


def test_the_bf16_probe_says_whether_this_cpu_runs_a_bf16_lstm_natively():
    lstm = torch.nn.LSTM(4, 8, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, _ = lstm(torch.randn(2, 3, 4))
        runs = output.dtype == torch.bfloat16
    except RuntimeError:
        runs = False
    # An AVX-512 CPU without AVX512-BF16 runs it too, emulated and slower than float32:
    # the probe says yes only where the instructions are there.
    flags = arguments_module.cpu_flags()
    native = flags is None or bool(flags & set(arguments_module.NATIVE_BF16_FLAGS))
    assert cpu_supports_bf16() == (runs and native)


def test_bf16_on_a_cpu_without_bf16_instructions_is_refused_with_what_to_do(
    tmp_path, monkeypatch
):
    # The probe answers as on an AVX2-only CPU, whatever this one has.
    monkeypatch.setattr(arguments_module, "cpu_supports_bf16", lambda: False)
    with pytest.raises(ValueError, match="no bfloat16 instructions.*Leave out --bf16"):
        VAETrainingArguments(output_dir=str(tmp_path), bf16=True, use_cpu=True)
    assert not VAETrainingArguments(output_dir=str(tmp_path), use_cpu=True).bf16


def test_aggressive_needs_a_validation_set(data, tmp_path):
    tokenizer, train, _ = data
    with pytest.raises(ValueError, match="needs an eval_dataset"):
        VAETrainer(
            model=TextVAEModel(small_config(len(tokenizer))),
            args=VAETrainingArguments(str(tmp_path), objective="aggressive", use_cpu=True),
            train_dataset=train,
            data_collator=TextCollator(),
        )


# --- weighting the ELBO's parts ----------------------------------------------------------


def test_loss_is_reconstruction_plus_beta_kl_with_free_bits(data, tmp_path):
    trainer = make_trainer(data, tmp_path, objective="beta", beta=0.3, free_bits=0.25)
    batch = TextCollator()(data[1].select(range(16)))
    torch.manual_seed(1)
    loss = trainer.compute_loss(trainer.model, batch)
    torch.manual_seed(1)
    outputs = trainer.model(**batch)
    expected = (
        outputs.reconstruction_nll.mean()
        + 0.3 * torch.clamp(outputs.kl_per_dim.mean(0), min=0.25).sum()
    )
    torch.testing.assert_close(loss, expected)


def test_free_bits_objective_is_the_elbo_with_clamped_kl(data, tmp_path):
    trainer = make_trainer(data, tmp_path, objective="free_bits", free_bits=0.5)
    batch = TextCollator()(data[1].select(range(16)))
    torch.manual_seed(2)
    loss = trainer.compute_loss(trainer.model, batch)
    torch.manual_seed(2)
    outputs = trainer.model(**batch)
    kl = outputs.kl_per_dim.mean(0)
    assert (kl < 0.5).any()  # a fresh model's KL is small: the clamp is exercised
    expected = outputs.reconstruction_nll.mean() + torch.clamp(kl, min=0.5).sum()
    torch.testing.assert_close(loss, expected)


def test_capacity_objective_is_reconstruction_plus_weighted_distance_to_c(data, tmp_path):
    trainer = make_trainer(
        data, tmp_path, objective="capacity", capacity=40.0, capacity_weight=3.0, anneal_steps=8
    )
    trainer._build_beta_schedule()
    trainer.state.global_step = 2  # C = 40 · 2/8 = 10 nats
    batch = TextCollator()(data[1].select(range(16)))
    torch.manual_seed(3)
    loss = trainer.compute_loss(trainer.model, batch)
    torch.manual_seed(3)
    outputs = trainer.model(**batch)
    kl = outputs.kl_per_dim.sum(-1).mean()
    expected = outputs.reconstruction_nll.mean() + 3.0 * (kl - 10.0).abs()
    torch.testing.assert_close(loss, expected)
    assert trainer.current_capacity == 10.0


def test_capacity_objective_holds_the_kl_near_its_target(data, tmp_path):
    # A fresh model's KL is ~0; the objective raises it to C = 6 nats over 20 steps and
    # holds it there, the plain ELBO (the same model, the same steps) leaves it near 0.
    def final_kl(**objective):
        trainer = make_trainer(data, tmp_path, max_steps=40, **objective)
        trainer.train()
        return trainer.evaluate()["eval_kl"], trainer

    held, trainer = final_kl(objective="capacity", capacity=6.0, anneal_steps=20)
    plain, _ = final_kl(objective="elbo")
    assert abs(held - 6.0) < 1.0, held
    assert plain < 1.0, plain
    capacities = [e["capacity"] for e in trainer.state.log_history if "capacity" in e]
    assert capacities[:3] == pytest.approx([0.0, 0.3, 0.6]) and capacities[-1] == 6.0
    # Its evaluation loss is the objective at the final C, not the negative ELBO.
    metrics = trainer.evaluate()
    assert metrics["eval_loss"] == pytest.approx(
        metrics["eval_reconstruction"] + abs(metrics["eval_kl"] - 6.0)
    )


def test_early_stopping_ends_a_run_whose_metric_stops_improving(data, tmp_path):
    # The learning rate 0 keeps the validation loss fixed: the first evaluation is the
    # best, and with patience 2 the run stops after the third of its 10 epochs.
    trainer = make_trainer(
        data, tmp_path, learning_rate=0.0, num_train_epochs=10, eval_strategy="epoch",
        save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="loss",
        greater_is_better=False, early_stopping_patience=2,
    )  # fmt: skip
    trainer.train()
    assert trainer.state.epoch == pytest.approx(3.0)


def test_annealed_beta_is_logged_for_every_step(data, tmp_path):
    trainer = make_trainer(
        data,
        tmp_path,
        objective="anneal",
        beta_schedule="linear",
        anneal_steps=4,
        anneal_beta_start=0.2,
        max_steps=6,
    )
    trainer.train()
    logged = [
        (entry["step"], entry["beta"]) for entry in trainer.state.log_history if "beta" in entry
    ]
    # The update after s completed steps used β(s) = min(1, 0.2 + 0.8·s/4).
    assert logged == [(s + 1, pytest.approx(min(1.0, 0.2 + 0.8 * s / 4))) for s in range(6)]
    assert all(
        "reconstruction" in e and "kl" in e for e in trainer.state.log_history if "beta" in e
    )


def test_anneal_length_in_epochs_follows_the_epoch_length(data, tmp_path):
    trainer = make_trainer(
        data, tmp_path, objective="anneal", anneal_epochs=0.5, num_train_epochs=1
    )
    trainer.train()
    # 320 sentences at batch 32: 10 steps per epoch, so β reaches 1 after 5 steps.
    assert trainer.beta_schedule.length == 5
    betas = [e["beta"] for e in trainer.state.log_history if "beta" in e]
    assert betas[:6] == [pytest.approx(0.1 + 0.9 * s / 5) for s in range(5)] + [1.0]


# --- the aggressive loop -----------------------------------------------------------------


class Snapshots(TrainerCallback):
    """Parameters at the three moments of each update."""

    def __init__(self) -> None:
        self.model = None
        self.taken: list[tuple[str, dict]] = []

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.taken.append(("begin", parameters(model)))

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.taken.append(("after inner loop", parameters(self.model)))

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.taken.append(("after update", parameters(self.model)))


def test_inner_steps_change_only_the_encoder_and_the_update_only_the_decoder(data, tmp_path):
    snapshots = Snapshots()
    trainer = make_trainer(
        data, tmp_path, objective="aggressive", max_steps=2, callbacks=[snapshots]
    )
    snapshots.model = trainer.model
    trainer.train()
    names = {name for name, _ in trainer.model.named_parameters()}
    encoder = {name for name in names if name.startswith("encoder.")}
    decoder = names - encoder
    assert [label for label, _ in snapshots.taken] == [
        "begin",
        "after inner loop",
        "after update",
    ] * 2
    for start in (0, 3):
        begin, inner, update = (snapshot for _, snapshot in snapshots.taken[start : start + 3])
        assert changed(begin, inner) == encoder
        assert changed(inner, update) == decoder
    assert trainer.aggressive.outer_steps == 2
    assert 2 <= trainer.aggressive.inner_steps_total <= 12


def test_inner_loop_leaves_accumulated_gradients_alone(data, tmp_path):
    trainer = make_trainer(data, tmp_path, objective="aggressive")
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    model = trainer.model
    marker = {name: torch.full_like(p, 0.5) for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        p.grad = marker[name].clone()
    steps = trainer.aggressive_inner_loop(TextCollator()(data[1].select(range(32))))
    assert steps % 3 == 0 or steps == 6
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, marker[name]), name
        assert p.requires_grad, name


def test_inner_steps_compute_no_decoder_gradient(data, tmp_path):
    trainer = make_trainer(data, tmp_path, objective="aggressive")
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    model = trainer.model
    decoder = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
    seen = []

    def record(module, args, kwargs):
        seen.append(
            (
                [p.requires_grad for p in decoder],
                [p.grad is None for p in model.parameters()],
            )
        )

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        steps = trainer.aggressive_inner_loop(TextCollator()(data[1].select(range(32))))
    finally:
        handle.remove()
    assert len(seen) == steps >= 3
    for decoder_requires_grad, no_gradient in seen:
        # No decoder weight is differentiated, and no gradient is carried into a step.
        assert not any(decoder_requires_grad)
        assert all(no_gradient)


def test_inner_loop_stop_rule():
    # Falling loss per token: runs to the maximum.
    rule = InnerLoopStop(window=3, max_steps=12)
    assert [rule.update(10.0 - step, 1.0) for step in range(12)] == [False] * 11 + [True]
    # The second window is no better than the first: stops after 6 steps.
    rule = InnerLoopStop(window=3, max_steps=100)
    stops = [rule.update(loss, 2.0) for loss in (4.0, 4.0, 4.0, 5.0, 3.0, 4.0)]
    assert stops == [False] * 5 + [True]
    # Compared per token, not per batch: same loss over more tokens is a decrease.
    rule = InnerLoopStop(window=1, max_steps=100)
    assert [rule.update(4.0, units) for units in (1.0, 2.0, 2.0)] == [False, False, True]


def test_mi_rule_counts_failures_to_beat_the_best():
    text = AggressiveState(active=True)
    for mi in (0.5, 0.7):
        text.record_mi(mi, patience=1)
        assert text.active
    text.record_mi(0.6, patience=1)
    assert not text.active and text.mi_history == [0.5, 0.7, 0.6]
    images = AggressiveState(active=True)
    for mi in (1.0, 0.5, 2.0, 1.5, 1.9):  # failures in all, not in a row
        images.record_mi(mi, patience=3)
    assert not images.active and images.failures == 3 and images.best_mi == 2.0


def test_aggressive_switches_off_at_the_first_epoch_whose_mi_does_not_rise(data, tmp_path):
    trainer = make_trainer(data, tmp_path, objective="aggressive", num_train_epochs=4)
    trainer.train()
    history = trainer.aggressive.mi_history
    logged = [e["validation_mi"] for e in trainer.state.log_history if "validation_mi" in e]
    assert logged == pytest.approx(history)
    rises = [later > earlier for earlier, later in zip(history, history[1:], strict=False)]
    if all(rises):
        assert trainer.aggressive.active and len(history) == 4
    else:
        assert not trainer.aggressive.active
        assert len(history) == rises.index(False) + 2
        off = trainer.aggressive.switched_off_at_epoch
        flags = [
            (e["epoch"], e["aggressive"])
            for e in trainer.state.log_history
            if "aggressive" in e and "loss" in e
        ]
        assert all(flag == (1.0 if epoch <= off else 0.0) for epoch, flag in flags)


def test_aggressive_checks_mi_every_given_number_of_updates(data, tmp_path):
    trainer = make_trainer(
        data, tmp_path, objective="aggressive", max_steps=7, aggressive_check_steps=2
    )
    trainer.train()
    history = trainer.aggressive.mi_history
    checked_at = [e["step"] for e in trainer.state.log_history if "validation_mi" in e]
    # While aggressive is on, a check every 2 updates and none at the epoch's end.
    assert checked_at == [2, 4, 6][: len(history)] and history
    rises = [later > earlier for earlier, later in zip(history, history[1:], strict=False)]
    assert len(history) == (3 if all(rises) else rises.index(False) + 2)
    assert trainer.aggressive.active == all(rises)


# --- checkpoints -------------------------------------------------------------------------


def test_resume_mid_aggressive_continues_exactly(data, tmp_path):
    settings = dict(
        objective="aggressive",
        max_steps=6,
        save_strategy="steps",
        save_steps=3,
        anneal_steps=4,
        beta_schedule="linear",
    )
    uninterrupted = make_trainer(data, tmp_path / "a", **settings)
    uninterrupted.train()
    checkpoint = tmp_path / "a" / "run" / "checkpoint-3"
    saved = json.loads((checkpoint / "vae_trainer_state.json").read_text())
    assert saved["aggressive"]["active"] is True and saved["global_step"] == 3
    assert saved["beta"] == pytest.approx(0.1 + 0.9 * 3 / 4)
    assert (checkpoint / "encoder_optimizer.pt").is_file()

    resumed = make_trainer(data, tmp_path / "b", init_seed=1, **settings)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert changed(parameters(uninterrupted.model), parameters(resumed.model)) == set()
    assert vars(resumed.aggressive) == vars(uninterrupted.aggressive)
    betas = {e["step"]: e["beta"] for e in resumed.state.log_history if "beta" in e}
    expected = {e["step"]: e["beta"] for e in uninterrupted.state.log_history if "beta" in e}
    assert betas == expected and len(betas) == 6


def test_a_checkpoint_holds_vaehubs_state_before_it_counts_as_complete(
    data, tmp_path, monkeypatch
):
    from transformers import TrainerState

    def killed(self, path):  # the process dies as transformers seals the checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(TrainerState, "save_to_json", killed)
    trainer = make_trainer(
        data, tmp_path, objective="aggressive", max_steps=2, save_strategy="steps", save_steps=2
    )
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert json.loads((checkpoint / "vae_trainer_state.json").read_text())["global_step"] == 2
    assert (checkpoint / "encoder_optimizer.pt").is_file()
    assert not (checkpoint / "trainer_state.json").exists()
    assert not list(checkpoint.glob("*.partial"))


def test_resuming_from_a_damaged_checkpoint_names_the_file_and_the_one_before(data, tmp_path):
    settings = dict(objective="aggressive", max_steps=4, save_strategy="steps", save_steps=2)
    make_trainer(data, tmp_path, **settings).train()
    run = tmp_path / "run"
    last, previous = run / "checkpoint-4", run / "checkpoint-2"
    weights = (last / "model.safetensors").read_bytes()
    damages = {
        "model.safetensors": lambda: (last / "model.safetensors").write_bytes(weights[:-64]),
        "encoder_optimizer.pt": lambda: torch.save(
            {"step": InnerLoopStop}, last / "encoder_optimizer.pt"  # a pickled class
        ),
        "vae_trainer_state.json": lambda: (last / "vae_trainer_state.json").write_text("{"),
        "trainer_state.json": lambda: (last / "trainer_state.json").unlink(),
    }
    for filename, damage in damages.items():
        damage()
        for resume in (True, str(last)):
            with pytest.raises(CheckpointError) as caught:
                make_trainer(data, tmp_path, **settings).train(resume_from_checkpoint=resume)
            message = str(caught.value)
            assert f"cannot resume from {last}: it holds no" in message or (
                f"{filename} is truncated or unreadable" in message
                or f"{filename} holds a pickled Python object" in message
            ), message
            assert filename in message
            assert f"--resume_from_checkpoint {previous}" in message
    (previous / "trainer_state.json").unlink()
    with pytest.raises(CheckpointError, match="no earlier complete checkpoint"):
        make_trainer(data, tmp_path, **settings).train(resume_from_checkpoint=str(last))


# --- evaluation --------------------------------------------------------------------------


def test_evaluate_reports_the_collapse_metrics(data, tmp_path):
    trainer = make_trainer(data, tmp_path, eval_iw_nll=True, iw_samples=5)
    metrics = trainer.evaluate()
    for key in (
        "eval_loss",
        "eval_reconstruction",
        "eval_kl",
        "eval_mi",
        "eval_active_units",
        "eval_nll",
        "eval_ppl",
    ):
        assert key in metrics, key
    assert metrics["eval_nll"] <= metrics["eval_loss"] + 1e-6
    assert metrics["eval_loss"] == pytest.approx(
        metrics["eval_reconstruction"] + metrics["eval_kl"]
    )
    again = trainer.evaluate()
    assert again == metrics  # a fixed seed: evaluation is repeatable


@pytest.mark.parametrize("after_only", [False, True])
def test_iw_nll_can_wait_for_the_end_of_training(data, tmp_path, after_only):
    trainer = make_trainer(
        data, tmp_path, max_steps=4, eval_strategy="steps", eval_steps=2, eval_iw_nll=True,
        iw_samples=3, iw_nll_after_training_only=after_only,
    )  # fmt: skip
    trainer.train()
    during = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    assert len(during) == 2 and all(("eval_nll" in e) != after_only for e in during)
    assert "eval_nll" in trainer.evaluate()  # measured after training: always there
