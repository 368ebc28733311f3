"""The output layer and its cross entropy in one pass, a block of token rows at a time.

    nll_i = logsumexp_v(h_i · w_v) − h_i · w_{t_i}        for rows i, vocabulary v

The (tokens × vocabulary) logits are the largest tensor of a text step; here no more than
one block of them exists at a time. Each block's logits are computed in the dtype of the
hidden states (bfloat16 under autocast: the fast matmul), raised to float32 for the
log-sum-exp, and dropped. With gradients, logits that fit `LOGITS_BUDGET_BYTES` are kept
for the backward as the plain loss keeps them (faster, measured); beyond it the backward
recomputes them from the saved hidden states instead of storing them. The weight is cast
to the matmul dtype once per call, not once per block. The backward is written in
differentiable operations, so SA-VAE can backpropagate through SVI steps that use it.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Rows per block: a block's logits (rows × 10k vocabulary × 4 bytes = 20 MB at 512) stay
# small enough to be reused from cache by the log-sum-exp and the gradient.
BLOCK_ROWS = 512
# Largest float32 logits a differentiated call keeps whole. Below it, storing them is
# faster than recomputing them in the backward (measured on the PTB setting, batch 32:
# a step 10-25% slower with the recompute); above it, memory is what runs out first.
LOGITS_BUDGET_BYTES = 512 * 2**20


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, block: int) -> Tensor:
        matmul_weight = weight.to(hidden.dtype)
        rows = hidden.shape[0]
        nll = []
        for start in range(0, rows, block):
            logits = (hidden[start : start + block] @ matmul_weight.T).float()
            target = logits.gather(1, targets[start : start + block, None]).squeeze(1)
            nll.append(torch.logsumexp(logits, dim=-1) - target)
        ctx.save_for_backward(hidden, weight, matmul_weight, targets)
        ctx.block = block
        return torch.cat(nll) if nll else hidden.new_zeros(0, dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad_nll: Tensor):
        hidden, weight, matmul_weight, targets = ctx.saved_tensors
        if torch.is_grad_enabled():
            # A backward that is itself differentiated (SA-VAE backpropagates through its
            # SVI steps): the cast must be part of the graph.
            matmul_weight = weight.to(hidden.dtype)
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
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
        return grad_hidden, grad_weight, None, None


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    block_rows: int = BLOCK_ROWS,
    logits_budget_bytes: int = LOGITS_BUDGET_BYTES,
) -> Tensor:
    """−log softmax(hidden · weightᵀ)[targets] per row, without keeping full logits.

    Without gradients (scoring, IW-NLL) the logits exist one block at a time. With
    gradients, logits up to `logits_budget_bytes` (float32) are kept for the backward as
    the plain loss keeps them; beyond it, the blocks are recomputed in the backward.

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
    small = hidden.shape[0] * weight.shape[0] * 4 <= logits_budget_bytes
    if hidden.dtype == torch.float64 or (differentiated and small):
        # Float64 models keep full precision; small differentiated calls keep their logits.
        logits = hidden @ weight.to(hidden.dtype).T
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        return torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    if torch.is_autocast_enabled(hidden.device.type):
        # Under autocast the weight is float32 and hidden may be either: match them to the
        # autocast dtype, as the plain matmul would have.
        dtype = torch.get_autocast_dtype(hidden.device.type)
        hidden = hidden.to(dtype)
        with torch.autocast(hidden.device.type, enabled=False):
            return _LinearCrossEntropy.apply(hidden, weight, targets.long(), block_rows)
    return _LinearCrossEntropy.apply(hidden, weight, targets.long(), block_rows)
