"""The output layer and its cross entropy in one pass.

    nll_i = logsumexp_v(h_i · w_v) − h_i · w_{t_i}        for rows i, vocabulary v

The (tokens × vocabulary) logits are the largest tensor of a text step. Their matmul runs
in the dtype of the hidden states (bfloat16 under autocast: the fast matmul), the
log-sum-exp in float32.

- Scoring (no gradients): a block of token rows at a time, so no more than one block of
  logits exists at once.
- Training, when the logits fit `LOGITS_BUDGET_BYTES`: the forward computes each row's
  gradient with respect to its logits, softmax − onehot(target), in one exponential pass
  over the logits, and keeps that instead of the logits; the backward is then two matmuls,
  with the upstream gradient applied to the small side. The plain log-softmax + NLL makes
  three more passes over the logits (log-softmax, its backward, the zero-filled NLL
  gradient) and, under autocast, two more casts.
- Beyond the budget: blocks, and the backward recomputes each block from the saved hidden
  states instead of storing it. A backward that is itself differentiated (SA-VAE
  backpropagates through SVI steps) takes this path too, in differentiable operations.

The weight is cast to the matmul dtype once per call. In float32 the forward matmul goes
through oneDNN's linear where this PyTorch has it (checked once, at import): for this
product's shape (few rows, a wide vocabulary) it is faster than the BLAS `mm`.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Rows per block: a block's logits (rows × 10k vocabulary × 4 bytes = 20 MB at 512) stay
# small enough to be reused from cache by the log-sum-exp and the gradient.
BLOCK_ROWS = 512
# Largest float32 (rows × vocabulary) a differentiated call keeps whole (as the logits'
# gradient). Below it, keeping is faster than recomputing in the backward; above it, memory
# is what runs out first.
LOGITS_BUDGET_BYTES = 512 * 2**20


def _onednn_linear_works() -> bool:
    """Whether oneDNN's linear (a PyTorch-internal op) is here and agrees with `mm`; checked
    once, on a tiny product, so that a PyTorch without it, or with another signature, falls
    back to the BLAS matmul instead of failing."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        generator = torch.Generator().manual_seed(0)
        a, w = torch.randn(3, 8, generator=generator), torch.randn(5, 8, generator=generator)
        out = torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
        return out.shape == (3, 5) and torch.allclose(out, a @ w.T, rtol=1e-4, atol=1e-5)
    except (AttributeError, RuntimeError, TypeError):
        return False


ONEDNN_LINEAR = _onednn_linear_works()


def output_logits(hidden: Tensor, matmul_weight: Tensor) -> Tensor:
    """`hidden @ matmul_weightᵀ`: `(rows, vocab)` in the operands' dtype."""
    if ONEDNN_LINEAR and hidden.dtype == torch.float32 and hidden.device.type == "cpu":
        return torch.ops.mkldnn._linear_pointwise(hidden, matmul_weight, None, "none", [], "")
    return hidden @ matmul_weight.T


def _nll_and_logit_gradient(
    hidden: Tensor, matmul_weight: Tensor, targets: Tensor
) -> tuple[Tensor, Tensor]:
    """Each row's nll `(rows,)` float32, and d nll / d logits = softmax − onehot(target)
    `(rows, vocab)` in the hidden states' dtype, from one exponential pass."""
    logits = output_logits(hidden, matmul_weight).float()
    rows = torch.arange(targets.shape[0], device=targets.device)
    target_logit = logits[rows, targets]
    top = logits.amax(dim=1, keepdim=True)
    probabilities = logits.sub_(top).exp_()
    total = probabilities.sum(dim=1, keepdim=True)
    nll = (top + total.log()).squeeze(1) - target_logit
    probabilities.div_(total)
    probabilities[rows, targets] -= 1
    return nll, probabilities.to(hidden.dtype)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, hidden: Tensor, weight: Tensor, targets: Tensor, block: int, keep: bool
    ) -> Tensor:
        matmul_weight = weight.to(hidden.dtype)
        ctx.block = block
        if keep:
            nll, grad_logits = _nll_and_logit_gradient(hidden, matmul_weight, targets)
            ctx.save_for_backward(hidden, weight, matmul_weight, targets, grad_logits)
            return nll
        nll = []
        for start in range(0, hidden.shape[0], block):
            logits = output_logits(hidden[start : start + block], matmul_weight).float()
            target = logits.gather(1, targets[start : start + block, None]).squeeze(1)
            nll.append(torch.logsumexp(logits, dim=-1) - target)
        ctx.save_for_backward(hidden, weight, matmul_weight, targets)
        return torch.cat(nll) if nll else hidden.new_zeros(0, dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_nll: Tensor):
        hidden, weight, matmul_weight, targets, *kept = ctx.saved_tensors
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if kept and not torch.is_grad_enabled():
            # softmax − onehot from the forward; the upstream gradient scales rows, so it
            # goes on the small side of each matmul.
            (grad_logits,) = kept
            scale = grad_nll.to(hidden.dtype)[:, None]
            grad_hidden = (grad_logits @ matmul_weight) * scale if need_hidden else None
            grad_weight = (
                (grad_logits.T @ (hidden * scale)).to(weight.dtype) if need_weight else None
            )
            return grad_hidden, grad_weight, None, None, None
        if torch.is_grad_enabled():
            # A backward that is itself differentiated (SA-VAE backpropagates through its
            # SVI steps): the cast must be part of the graph.
            matmul_weight = weight.to(hidden.dtype)
        grad_hidden, grad_weight = [], None
        for start in range(0, hidden.shape[0], ctx.block):
            rows = hidden[start : start + ctx.block]
            block_targets = targets[start : start + ctx.block, None]
            # d nll / d logits = softmax − onehot(target), times the upstream gradient;
            # recomputed from the block's logits, which were never stored. Out of place,
            # so that this backward can be differentiated in turn.
            probabilities = torch.softmax((rows @ matmul_weight.T).float(), dim=-1)
            minus_one = torch.full_like(block_targets, -1, dtype=probabilities.dtype)
            grad_logits = probabilities.scatter_add(1, block_targets, minus_one)
            grad_logits = (grad_logits * grad_nll[start : start + ctx.block, None]).to(hidden.dtype)
            if need_hidden:
                grad_hidden.append(grad_logits @ matmul_weight)
            if need_weight:
                block_grad = (grad_logits.T @ rows).float()
                grad_weight = block_grad if grad_weight is None else grad_weight + block_grad
        grad_hidden = torch.cat(grad_hidden) if need_hidden and grad_hidden else None
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    block_rows: int = BLOCK_ROWS,
    logits_budget_bytes: int = LOGITS_BUDGET_BYTES,
) -> Tensor:
    """−log softmax(hidden · weightᵀ)[targets] per row, without keeping full logits.

    Without gradients (scoring, IW-NLL) the logits exist one block at a time. With
    gradients, while the (rows × vocabulary) float32 logits fit `logits_budget_bytes`, their
    gradient is computed in the forward and kept; beyond it, the blocks are recomputed in
    the backward.

    Args:
        hidden: `(rows, hidden_size)` the output layer's inputs (any float dtype; the
            matmul runs in it).
        weight: `(vocab_size, hidden_size)` the output layer's weight (no bias).
        targets: `(rows,)` target ids.
        block_rows: rows per block.
        logits_budget_bytes: 0 always recomputes.
    Returns:
        `(rows,)` float32 (float64 when `hidden` is float64) negative log-likelihoods.
    """
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"hidden {tuple(hidden.shape)} and weight {tuple(weight.shape)} do not make a "
            "(rows, vocab) product."
        )
    if targets.shape != hidden.shape[:1]:
        raise ValueError(f"targets {tuple(targets.shape)} need one id per row of hidden.")
    differentiated = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    if hidden.dtype == torch.float64:
        # Float64 models keep full precision.
        logits = hidden @ weight.to(hidden.dtype).T
        return torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    keep = differentiated and hidden.shape[0] * weight.shape[0] * 4 <= logits_budget_bytes
    if torch.is_autocast_enabled(hidden.device.type):
        # Under autocast the weight is float32 and hidden may be either: match them to the
        # autocast dtype, as the plain matmul would have.
        dtype = torch.get_autocast_dtype(hidden.device.type)
        hidden = hidden.to(dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            return _LinearCrossEntropy.apply(hidden, weight, targets.long(), block_rows, keep)
    return _LinearCrossEntropy.apply(hidden, weight, targets.long(), block_rows, keep)
