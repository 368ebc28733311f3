"""The exact baselines: the text VAE's decoder alone (`TextLMModel`) and the δ-VAE's
decoder alone (`PixelCNNModel`), their exact NLL, VAEs started from them, and ΔNLL."""

import itertools
import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from vaehub import (
    DeltaVAEModel,
    PixelCNNConfig,
    PixelCNNModel,
    TextLMConfig,
    TextLMModel,
    TextVAEModel,
)
from vaehub.commands.main import main
from vaehub.data.batching import iterate_batches
from vaehub.data.text import TextCollator
from vaehub.evaluation.metrics import (
    compare_to_baseline,
    evaluate_exact,
    evaluate_vae,
    latent_use,
)
from vaehub.hub.cards import render_model_card
from vaehub.training.arguments import VAETrainingArguments
from vaehub.training.trainer import VAETrainer


def lm_config(vocab_size: int = 30, **overrides) -> TextLMConfig:
    values = dict(
        vocab_size=vocab_size,
        embedding_size=16,
        decoder_hidden_size=24,
        max_sequence_length=12,
        init_range=0.3,
        embedding_init_range=0.5,
    )
    return TextLMConfig(**{**values, **overrides})


def sentences(count: int = 5, vocab_size: int = 30, seed: int = 0):
    """Right-padded `<s> … </s>` rows of lengths 3 to 12, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 13, (count,), generator=generator)
    ids = torch.zeros(count, int(lengths.max()), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths.tolist()):
        ids[row, :length] = torch.randint(4, vocab_size, (length,), generator=generator)
        ids[row, 0], ids[row, length - 1] = 2, 3
        mask[row, :length] = 1
    return ids, mask


def test_text_lm_nll_is_the_sum_of_its_next_token_cross_entropies_step_by_step():
    torch.manual_seed(0)
    model = TextLMModel(lm_config()).eval()
    ids, mask = sentences()
    exact = -model.log_likelihood(ids, mask)
    # Step by step through the state `generate` carries: each token scored from the
    # distribution the model gives after reading only the tokens before it.
    by_hand = torch.zeros(ids.shape[0])
    for row in range(ids.shape[0]):
        length = int(mask[row].sum())
        state = None
        for t in range(length - 1):
            step = model(input_ids=ids[row : row + 1, : t + 1], decoding=True, cache=state)
            state = step.cache
            log_p = F.log_softmax(step.logits[0, -1].double(), -1)
            by_hand[row] -= log_p[ids[row, t + 1]].item()
    torch.testing.assert_close(exact, by_hand.to(exact.dtype), rtol=1e-5, atol=1e-4)
    # The training forward (dropout off in eval) and the evaluation agree.
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).reconstruction_nll, exact)
    results = evaluate_vae(model, [{"input_ids": ids, "attention_mask": mask}])
    assert results["exact"] and results["kl"] == 0 and results["active_units"] == 0
    assert results["nll"] == pytest.approx(exact.mean().item(), rel=1e-6)
    tokens = mask[:, 1:].sum().item()
    assert results["ppl"] == pytest.approx(torch.exp(exact.sum() / tokens).item(), rel=1e-6)


def test_pixelcnn_is_a_normalised_distribution_over_all_images():
    """Exact NLL: on 3×3 binary images, Σ over all 512 images of p(x) is 1, which holds
    only if every pixel is predicted from the pixels before it alone."""
    torch.manual_seed(0)
    config = PixelCNNConfig(image_size=3, decoder_channels=8, decoder_layers=2)
    model = PixelCNNModel(config).eval()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=9))).view(-1, 1, 3, 3)
    with torch.no_grad():
        log_p = model.log_likelihood(images).double()
        total = torch.logsumexp(log_p, 0).exp().item()
        assert total == pytest.approx(1.0, abs=1e-5)
        logits = model(images[:4]).logits
    by_hand = F.binary_cross_entropy_with_logits(logits, images[:4], reduction="none")
    torch.testing.assert_close(-log_p[:4].float(), by_hand.flatten(1).sum(-1))
    results = evaluate_vae(model, [{"pixel_values": images}])
    assert results["exact"] and results["nll"] == pytest.approx(-log_p.mean().item(), rel=1e-5)
    assert "bits_per_dim" in results


def test_a_text_vae_from_the_language_model_has_its_decoder_weights(tmp_path):
    torch.manual_seed(0)
    lm = TextLMModel(lm_config()).eval()
    vae = TextVAEModel.from_decoder(lm, latent_size=3, encoder_hidden_size=20).eval()
    for name in ("embed_tokens.weight", "lm_head.weight", "lstm.weight_hh_l0", "lstm.bias_ih_l0"):
        assert torch.equal(vae.decoder.state_dict()[name], lm.decoder.state_dict()[name]), name
    assert torch.equal(vae.decoder.lstm.weight_ih_l0[:, :16], lm.decoder.lstm.weight_ih_l0)
    # With z's own weights zeroed the VAE's decoder is the language model, whatever z.
    with torch.no_grad():
        vae.decoder.lstm.weight_ih_l0[:, 16:] = 0
        vae.decoder.latent_to_state.weight.zero_()
    ids, mask = sentences()
    z = torch.randn(1, ids.shape[0], 3)
    torch.testing.assert_close(vae.log_likelihood(ids, mask, z)[0], lm.log_likelihood(ids, mask))
    with pytest.raises(ValueError, match="decoder_hidden_size=32 .language model: 24"):
        TextVAEModel.from_decoder(lm, decoder_hidden_size=32)


def test_a_delta_vae_from_the_pixelcnn_has_its_decoder_weights():
    torch.manual_seed(0)
    pixelcnn = PixelCNNModel(PixelCNNConfig(image_size=5, decoder_channels=8, decoder_layers=2))
    vae = DeltaVAEModel.from_decoder(
        pixelcnn, prior="ar1", committed_rate=1.0, encoder_channels=4, encoder_layers=1
    ).eval()
    theirs = pixelcnn.decoder.state_dict()
    for name, value in vae.decoder.state_dict().items():
        if not name.startswith("condition."):
            assert torch.equal(value, theirs[name]), name
    with torch.no_grad():
        vae.decoder.condition.weight.zero_()
        vae.decoder.condition.bias.zero_()
    images = (torch.rand(3, 1, 5, 5) > 0.5).float()
    z = torch.randn(1, 3, 25, vae.config.latent_size)
    torch.testing.assert_close(
        vae.log_likelihood(images, z)[0], pixelcnn.eval().log_likelihood(images)
    )


def test_baselines_save_load_and_generate(tmp_path, ptb_slice):
    torch.manual_seed(0)
    lm = TextLMModel(lm_config(len(ptb_slice["tokenizer"]), max_sequence_length=64)).eval()
    lm.tokenizer = ptb_slice["tokenizer"]
    lm.save_pretrained(tmp_path / "lm")
    loaded = AutoModel.from_pretrained(tmp_path / "lm").eval()
    assert isinstance(loaded, TextLMModel) and loaded.tokenizer is not None
    text = ["the company said it expects higher sales"]
    torch.testing.assert_close(loaded.score(text), lm.score(text))
    samples = loaded.generate_sentences(num_samples=4, max_new_tokens=8)
    assert len(samples) == 4 and len(set(samples)) > 1  # sampled, not one greedy sentence
    greedy = loaded.generate(num_samples=2, do_sample=False, max_new_tokens=6)
    assert torch.equal(greedy[0], greedy[1])

    pixelcnn = PixelCNNModel(PixelCNNConfig(image_size=4, decoder_channels=8, decoder_layers=2))
    pixelcnn.save_pretrained(tmp_path / "pixelcnn")
    again = AutoModel.from_pretrained(tmp_path / "pixelcnn").eval()
    images = (torch.rand(2, 1, 4, 4) > 0.5).float()
    torch.testing.assert_close(again.log_likelihood(images), pixelcnn.eval().log_likelihood(images))
    drawn = again.generate(num_samples=3, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (3, 1, 4, 4) and set(drawn.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        again.generate(num_samples=0)


def test_the_trainer_trains_a_baseline_on_its_exact_nll_and_refuses_latent_settings(
    ptb_slice, tmp_path
):
    torch.manual_seed(0)
    data = ptb_slice["data"]
    model = TextLMModel(lm_config(len(ptb_slice["tokenizer"]), max_sequence_length=64))
    args = dict(output_dir=str(tmp_path), per_device_train_batch_size=32, learning_rate=3e-3,
                report_to="none", use_cpu=True, disable_tqdm=True, save_strategy="no")  # fmt: skip
    validation = data["validation"]
    trainer = VAETrainer(
        model=model,
        args=VAETrainingArguments(**args, max_steps=30, logging_steps=10),
        train_dataset=data["train"],
        eval_dataset=validation,
        data_collator=TextCollator(),
    )
    before = trainer.evaluate()["eval_nll"]
    trainer.train()
    metrics = trainer.evaluate()
    assert metrics["eval_nll"] < before - 5
    exact = evaluate_exact(model, iterate_batches(validation, 64, model.config.pad_token_id))
    assert metrics["eval_nll"] == pytest.approx(exact["nll"], rel=1e-5)
    for setting in ({"objective": "aggressive"}, {"free_bits": 0.5}, {"objective": "anneal"}):
        with pytest.raises(ValueError, match="has no latent"):
            VAETrainer(
                model=model,
                args=VAETrainingArguments(**args, **setting),
                train_dataset=data["train"],
                eval_dataset=validation,
                data_collator=TextCollator(),
            )


def test_evaluate_vae_puts_the_baseline_beside_the_iw_nll():
    torch.manual_seed(0)
    lm = TextLMModel(lm_config()).eval()
    vae = TextVAEModel.from_decoder(lm, latent_size=2, encoder_hidden_size=8).eval()
    ids, mask = sentences(6)
    batches = [{"input_ids": ids, "attention_mask": mask}]
    results = evaluate_vae(vae, iter(batches), iw_samples=10, baseline=lm)
    exact = -lm.log_likelihood(ids, mask).mean().item()
    assert results["baseline_nll"] == pytest.approx(exact, rel=1e-6)
    assert results["delta_nll"] == pytest.approx(results["nll"] - exact, abs=1e-5)
    # What the decoder reads: the decoder alone's NLL minus the reconstruction term.
    assert results["nats_read"] == pytest.approx(exact - results["reconstruction"], abs=1e-5)
    assert results["rate_unread"] == pytest.approx(
        results["kl"] - results["nats_read"], abs=1e-5
    )
    with pytest.raises(ValueError, match="give iw_samples"):
        evaluate_vae(vae, batches, baseline=lm)
    other = TextLMModel(lm_config(vocab_size=40))
    with pytest.raises(ValueError, match="does not read the data .*vocab_size 30 vs 40"):
        evaluate_vae(vae, batches, iw_samples=10, baseline=other)


def test_nats_read_from_z_is_the_baseline_nll_minus_the_reconstruction_term():
    # ptb-vae-high-rate's shape: an LM at 102.24 nats, a reconstruction term of 100.87
    # and a KL of 28.1: the decoder reads 1.37 nats and 26.73 are paid unread.
    use = latent_use(baseline_nll=102.24, reconstruction=100.87, kl=28.1)
    assert use["nats_read"] == pytest.approx(1.37)
    assert use["rate_unread"] == pytest.approx(26.73)
    # A decoder that scores worse with z than without it reads a negative amount.
    assert latent_use(50.0, 50.5, 2.0) == pytest.approx({"nats_read": -0.5, "rate_unread": 2.5})
    vae = {"nll": 40.0, "reconstruction": 30.0, "kl": 12.0, "num_examples": 10}
    compared = compare_to_baseline(vae, {"nll": 39.5, "num_examples": 10})
    assert (compared["nats_read"], compared["rate_unread"]) == (9.5, 2.5)


def test_compare_to_baseline_needs_the_same_data():
    vae = {"nll": 40.0, "num_examples": 10}
    assert compare_to_baseline(vae, {"nll": 39.5, "num_examples": 10})["delta_nll"] == 0.5
    with pytest.raises(ValueError, match="same data"):
        compare_to_baseline(vae, {"nll": 39.5, "num_examples": 9})
    with pytest.raises(ValueError, match="iw_samples"):
        compare_to_baseline({"kl": 1.0, "num_examples": 10}, {"nll": 39.5, "num_examples": 10})


def test_vaehub_trains_the_language_model_and_puts_it_beside_a_vae(tmp_path, capsys):
    """`vaehub train --model_type text_lm`, a VAE started from it, and `vaehub evaluate
    --baseline` printing ΔNLL; the baseline's card reports its exact NLL."""
    common = ["--dataset", "synthetic", "--synthetic_sentences", "300", "--preset", "synthetic",
              "--max_steps", "20", "--use_cpu", "--report_to", "none", "--disable_tqdm", "true",
              "--save_strategy", "no", "--iw_samples", "5"]  # fmt: skip
    lm_dir, vae_dir = tmp_path / "lm", tmp_path / "vae"
    assert main(["train", "--model_type", "text_lm", "--output_dir", str(lm_dir), *common]) == 0
    results = json.loads((lm_dir / "eval_validation.json").read_text())["metrics"]
    assert results["exact"] == 1 and results["kl"] == 0 and results["nll"] > 0
    assert "NLL (nats/sentence, exact)" in render_model_card(str(lm_dir)).content
    assert main(["train", "--model_type", "text_lm", "--latent_size", "4", "--output_dir",
                 str(tmp_path / "x"), *common]) == 1  # fmt: skip
    assert "--latent_size is not a text_lm setting" in capsys.readouterr().err

    code = main(["train", "--init_decoder_from", str(lm_dir), "--baseline", str(lm_dir),
                 "--eval_iw_nll", "true", "--output_dir", str(vae_dir), *common])  # fmt: skip
    assert code == 0
    vae_results = json.loads((vae_dir / "eval_validation.json").read_text())["metrics"]
    assert vae_results["baseline_nll"] == pytest.approx(results["nll"], rel=1e-6)
    assert vae_results["delta_nll"] == pytest.approx(vae_results["nll"] - results["nll"])
    assert "ΔNLL vs decoder alone" in render_model_card(str(vae_dir)).content

    corpus = tmp_path / "sentences.txt"
    corpus.write_text("".join(f"{i} {i + 1} {i + 2}\n" for i in range(4, 30)), encoding="utf-8")
    capsys.readouterr()
    code = main(["evaluate", str(vae_dir), "--data", str(corpus), "--iw-samples", "5",
                 "--baseline", str(lm_dir), "--no-progress", "--output",
                 str(tmp_path / "out.json")])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "decoder-alone NLL" in printed and "ΔNLL vs decoder alone" in printed
    saved = json.loads((tmp_path / "out.json").read_text())["metrics"]
    assert saved["delta_nll"] == pytest.approx(saved["nll"] - saved["baseline_nll"])
    assert main(["evaluate", str(lm_dir), "--data", str(corpus), "--baseline", str(vae_dir),
                 "--no-progress", "--output", str(tmp_path / "o.json")]) == 1  # fmt: skip
    assert "give a text_lm or pixelcnn model" in capsys.readouterr().err


def test_evaluation_batches_binarize_the_same_whatever_the_model_drew(tmp_path):
    """ΔNLL compares two models on the same images: dynamic binarization at evaluation
    depends on the seed and the batch, not on the random numbers a model used."""
    from vaehub.data.images import ImageCollator, load_digits

    images = load_digits("test").select(range(40))
    model = PixelCNNModel(PixelCNNConfig(image_size=8, decoder_channels=8, decoder_layers=2))
    args = VAETrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=16,
                                report_to="none", use_cpu=True, disable_tqdm=True)  # fmt: skip
    trainer = VAETrainer(model=model, args=args, eval_dataset=images, data_collator=ImageCollator())
    first = []
    for batch in trainer._evaluation_batches(images):
        first.append(batch["pixel_values"])
        torch.rand(1000)  # a model drawing samples between batches
    second = [batch["pixel_values"] for batch in trainer._evaluation_batches(images)]
    assert len(first) == 3 and all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
