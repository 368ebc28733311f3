"""The fused output layer and cross entropy (`vaehub.models.text.fused_loss`) against the plain
log-softmax + NLL: values and gradients, float32 and bfloat16, and the models' use of it."""

import pytest
import torch
import torch.nn.functional as F

from vaehub import TextVAEConfig, TextVAEModel
from vaehub.models.text.fused_loss import linear_cross_entropy

# 0: every block recomputed in the backward; the default: the logits' gradient kept from the
# forward (these sizes fit its budget).
BUDGETS = pytest.mark.parametrize("budget", [0, None], ids=["recomputed", "kept"])


def fused_nll(h, w, targets, block_rows, budget):
    if budget is None:
        return linear_cross_entropy(h, w, targets, block_rows)
    return linear_cross_entropy(h, w, targets, block_rows, logits_budget_bytes=budget)


def plain_and_fused(dtype_context, budget, block_rows=96, rows=300, hidden=24, vocab=500):
    torch.manual_seed(0)
    h = torch.randn(rows, hidden, requires_grad=True)
    w = (0.2 * torch.randn(vocab, hidden)).requires_grad_()
    targets = torch.randint(vocab, (rows,))
    upstream = torch.rand(rows)
    out = {}
    for name in ("plain", "fused"):
        with dtype_context():
            if name == "plain":
                nll = F.cross_entropy((h @ w.T).float(), targets, reduction="none")
            else:
                nll = fused_nll(h, w, targets, block_rows, budget)
        (nll * upstream).sum().backward()
        out[name] = (nll.detach(), h.grad.clone(), w.grad.clone())
        h.grad = w.grad = None
    return out


@BUDGETS
def test_fused_loss_equals_the_plain_one_in_float32(budget):
    from contextlib import nullcontext

    out = plain_and_fused(nullcontext, budget)
    for plain, fused in zip(out["plain"], out["fused"], strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-6)


@BUDGETS
def test_fused_loss_under_bfloat16_autocast_is_within_bfloat16_rounding(budget):
    out = plain_and_fused(lambda: torch.autocast("cpu", dtype=torch.bfloat16), budget)
    nll_plain, h_plain, w_plain = out["plain"]
    nll_fused, h_fused, w_fused = out["fused"]
    assert nll_fused.dtype == torch.float32 and w_fused.dtype == torch.float32
    torch.testing.assert_close(nll_fused, nll_plain, rtol=1e-5, atol=1e-5)
    # bfloat16 keeps 8 bits of mantissa: gradients agree to its rounding, ~0.4%.
    for fused, plain in ((h_fused, h_plain), (w_fused, w_plain)):
        assert (fused - plain).norm() / plain.norm() < 1e-2


def test_fused_loss_refuses_shapes_that_do_not_fit():
    with pytest.raises(ValueError, match="do not make a"):
        linear_cross_entropy(torch.randn(4, 3), torch.randn(10, 5), torch.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="one id per row"):
        linear_cross_entropy(torch.randn(4, 3), torch.randn(10, 3), torch.zeros(3, dtype=int))


def test_training_without_logits_gives_the_same_loss_and_gradients():
    """`return_logits=False` (how VAETrainer trains) against the plain loss over the full
    logits: the same per-sentence NLL and the same weight gradients, in float32."""
    torch.manual_seed(0)
    config = TextVAEConfig(vocab_size=700, embedding_size=16, encoder_hidden_size=16,
                           decoder_hidden_size=32, latent_size=4, max_sequence_length=20,
                           decoder_embedding_dropout=0.0, decoder_output_dropout=0.0)  # fmt: skip
    model = TextVAEModel(config)
    ids = torch.randint(4, 700, (6, 15))
    ids[:, 0] = 2
    mask = torch.ones_like(ids)
    mask[3:, 10:] = 0
    z = torch.randn(6, 4)
    gradients = {}
    for keep in (True, False):
        out = model(ids, mask, z=z, return_logits=keep)
        assert (out.logits is not None) == keep
        out.reconstruction_nll.sum().backward()
        gradients[keep] = (out.reconstruction_nll.detach(),
                           {n: p.grad.clone() for n, p in model.named_parameters()
                            if p.grad is not None})  # fmt: skip
        model.zero_grad()
    torch.testing.assert_close(gradients[False][0], gradients[True][0], rtol=1e-5, atol=1e-5)
    assert gradients[False][1].keys() == gradients[True][1].keys()
    for name, grad in gradients[True][1].items():
        torch.testing.assert_close(gradients[False][1][name], grad, rtol=1e-4, atol=1e-6)


@BUDGETS
def test_the_backward_can_be_differentiated_as_the_plain_ones(budget):
    """SA-VAE differentiates gradients taken through the loss (create_graph): the fused
    backward's own gradient matches the plain loss's, for the hidden states and weight."""
    torch.manual_seed(0)
    h = torch.randn(70, 12, requires_grad=True)
    w = (0.3 * torch.randn(90, 12)).requires_grad_()
    targets = torch.randint(90, (70,))
    direction = torch.randn(70, 12)
    second = {}
    for name in ("plain", "fused"):
        if name == "plain":
            nll = F.cross_entropy(h @ w.T, targets, reduction="none")
        else:
            nll = fused_nll(h, w, targets, 32, budget)
        (grad_h,) = torch.autograd.grad(nll.sum(), h, create_graph=True)
        hidden_second, weight_second = torch.autograd.grad((grad_h * direction).sum(), (h, w))
        second[name] = (hidden_second, weight_second)
    for fused, plain in zip(second["fused"], second["plain"], strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-6)


def test_no_rows_give_no_loss_and_zero_gradients():
    w = torch.randn(50, 8, requires_grad=True)
    h = torch.randn(0, 8, requires_grad=True)
    nll = linear_cross_entropy(h, w, torch.zeros(0, dtype=torch.long))
    assert nll.shape == (0,)
    nll.sum().backward()
    assert h.grad.shape == (0, 8) and torch.count_nonzero(w.grad) == 0
