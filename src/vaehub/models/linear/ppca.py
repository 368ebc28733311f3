"""Probabilistic PCA (Tipping & Bishop 1999; Lucas et al. 2019): the linear-Gaussian model whose
marginal likelihood the linear VAE's ELBO reaches at its optimum.

    p(z) = N(0, I_k),  p(x|z) = N(Wz + μ, σ²I_D)  ⇒  p(x) = N(μ, C),  C = WWᵀ + σ²I

- `ppca_log_marginal`: exact log p(x) in O(n·D·k + k³) through M = WᵀW + σ²I (k × k):
  log|C| = (D − k) log σ² + log|M| and C⁻¹ = σ⁻²(I − W M⁻¹ Wᵀ); C is never built.
- `ppca_mle`: the closed-form maximum-likelihood W, μ (and σ²) from the sample covariance.
- `collapsed_dimensions_expected`: how many of the k latent directions the marginal
  likelihood itself switches off at a fixed σ² (Lucas et al. 2019).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


@dataclass
class PPCASolution:
    """The maximum-likelihood pPCA parameters and the spectrum they come from.

    Attributes:
        weight: `(D, k)` W = U_k (Λ_k − σ²I)^{1/2}; a column whose λ_i ≤ σ² is zero.
        mean: `(D,)` μ, the sample mean (`None` when only a covariance was given).
        sigma2: σ², given or the mean of the discarded eigenvalues.
        eigenvalues: `(D,)` λ₁ ≥ … ≥ λ_D of the sample covariance.
        eigenvectors: `(D, D)` U, column i the eigenvector of λ_i.
    """

    weight: Tensor
    mean: Tensor | None
    sigma2: float
    eigenvalues: Tensor
    eigenvectors: Tensor

    @property
    def collapsed_dimensions(self) -> int:
        """#{i ≤ k: λ_i ≤ σ²}, the zero columns of `weight`."""
        return collapsed_dimensions_expected(self.eigenvalues, self.weight.shape[1], self.sigma2)


def _check_sigma2(sigma2: float | Tensor) -> Tensor | float:
    value = float(sigma2.detach()) if isinstance(sigma2, Tensor) else sigma2
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"sigma2 must be a finite number > 0, got {sigma2!r}.")
    if not math.isfinite(value):
        raise ValueError(f"sigma2 must be a finite number > 0, got {sigma2!r}.")
    return sigma2


def ppca_log_marginal(x: Tensor, W: Tensor, mu: Tensor, sigma2: float | Tensor) -> Tensor:
    """Exact log N(x; μ, WWᵀ + σ²I) per row, via Woodbury and the determinant lemma.

    Differentiable in every argument (σ² may be a 0-d tensor that requires a gradient).

    Args:
        x: `(*batch, D)` observations.
        W: `(D, k)` factor loadings.
        mu: `(D,)` mean.
        sigma2: σ² > 0, the isotropic noise variance.
    Returns:
        `(*batch,)` log p(x) in nats.
    """
    if not isinstance(x, Tensor) or x.dim() < 1:
        raise ValueError("x must be a tensor of shape (*batch, D).")
    if not isinstance(W, Tensor) or W.dim() != 2:
        raise ValueError(f"W must be a (D, k) matrix, got {getattr(W, 'shape', W)!r}.")
    D, k = W.shape
    if x.shape[-1] != D:
        raise ValueError(f"x has {x.shape[-1]} columns but W has D={D} rows.")
    if not isinstance(mu, Tensor) or tuple(mu.shape) != (D,):
        raise ValueError(f"mu must have shape ({D},), got {getattr(mu, 'shape', mu)!r}.")
    _check_sigma2(sigma2)
    dtype = torch.promote_types(x.dtype, W.dtype)
    x, W, mu = x.to(dtype), W.to(dtype), mu.to(dtype)
    s2 = torch.as_tensor(sigma2, dtype=dtype, device=W.device)
    M = W.T @ W + s2 * torch.eye(k, dtype=dtype, device=W.device)
    L = torch.linalg.cholesky(M)
    residual = x - mu
    projected = residual @ W  # (*batch, k): Wᵀ(x − μ)
    # ‖L⁻¹Wᵀr‖² = rᵀ W M⁻¹ Wᵀ r, without forming M⁻¹.
    whitened = torch.linalg.solve_triangular(L, projected.unsqueeze(-1), upper=False).squeeze(-1)
    quadratic = (residual.pow(2).sum(-1) - whitened.pow(2).sum(-1)) / s2
    log_det = (D - k) * torch.log(s2) + 2 * torch.log(torch.diagonal(L)).sum()
    return -0.5 * (D * LOG_2PI + log_det + quadratic)


def sample_covariance(x: Tensor) -> tuple[Tensor, Tensor]:
    """The sample mean `(D,)` and maximum-likelihood covariance S = (1/n) Σ (x − x̄)(x − x̄)ᵀ
    `(D, D)` of `(n, D)` rows (n ≥ 2)."""
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(
            f"x must be an (n, D) tensor with n >= 2 rows, got {getattr(x, 'shape', x)!r}."
        )
    mean = x.mean(0)
    centred = x - mean
    return mean, centred.T @ centred / x.shape[0]


def ppca_mle(x: Tensor, latent_size: int, sigma2: float | None = None) -> PPCASolution:
    """Closed-form maximum-likelihood pPCA of data rows.

    Args:
        x: `(n, D)` observations.
        latent_size: k, 1 ≤ k ≤ D (k < D when σ² is to be estimated).
        sigma2: a fixed σ² > 0; `None` takes the ML value, the mean of the D − k
            discarded eigenvalues.
    """
    mean, covariance = sample_covariance(x)
    solution = ppca_mle_from_covariance(covariance, latent_size, sigma2)
    solution.mean = mean
    return solution


def ppca_mle_from_covariance(
    covariance: Tensor, latent_size: int, sigma2: float | None = None
) -> PPCASolution:
    """Closed-form maximum-likelihood pPCA from a sample covariance `(D, D)`:
    W = U_k (Λ_k − σ²I)^{1/2}, the columns with λ_i ≤ σ² zero (Tipping & Bishop).

    Args:
        covariance: `(D, D)` symmetric positive semi-definite S.
        latent_size: k, 1 ≤ k ≤ D (k < D when σ² is to be estimated).
        sigma2: a fixed σ² > 0, or `None` for the ML value (1/(D − k)) Σ_{i>k} λ_i.
    """
    if not isinstance(covariance, Tensor) or covariance.dim() != 2:
        raise ValueError("covariance must be a (D, D) tensor.")
    D = covariance.shape[0]
    if covariance.shape[1] != D:
        raise ValueError(f"covariance must be square, got {tuple(covariance.shape)}.")
    if not torch.allclose(covariance, covariance.T, rtol=1e-5, atol=1e-8):
        raise ValueError("covariance must be symmetric.")
    if isinstance(latent_size, bool) or not isinstance(latent_size, int):
        raise ValueError(f"latent_size must be an integer in [1, {D}], got {latent_size!r}.")
    if not 1 <= latent_size <= D:
        raise ValueError(f"latent_size must be an integer in [1, {D}], got {latent_size!r}.")
    values, vectors = torch.linalg.eigh(covariance)
    values, vectors = values.flip(0), vectors.flip(1)  # descending
    if sigma2 is None:
        if latent_size == D:
            raise ValueError(
                "sigma2's maximum-likelihood value is the mean of the discarded eigenvalues; "
                f"latent_size={D}=D discards none: give sigma2."
            )
        sigma2 = float(values[latent_size:].clamp(min=0).mean())
        if sigma2 <= 0:
            raise ValueError(
                f"the data lie in a subspace of dimension <= latent_size={latent_size}, so the "
                "ML sigma2 is 0: give sigma2 > 0 or a smaller latent_size."
            )
    _check_sigma2(sigma2)
    scales = (values[:latent_size] - sigma2).clamp(min=0).sqrt()
    weight = vectors[:, :latent_size] * scales
    return PPCASolution(weight, None, float(sigma2), values, vectors)


def collapsed_dimensions_expected(eigenvalues: Tensor, latent_size: int, sigma2: float) -> int:
    """#{i ≤ k: λ_i ≤ σ²}: the latent directions whose column of the ML W is zero, so that
    q(z|x) equals the prior on them at the optimum.

    Args:
        eigenvalues: `(D,)` eigenvalues of the sample covariance, in any order (sorted
            descending here).
        latent_size: k, 1 ≤ k ≤ D.
        sigma2: σ² > 0.
    """
    values = torch.as_tensor(eigenvalues)
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError("eigenvalues must be a non-empty 1-d tensor.")
    D = values.numel()
    if isinstance(latent_size, bool) or not isinstance(latent_size, int):
        raise ValueError(f"latent_size must be an integer in [1, {D}], got {latent_size!r}.")
    if not 1 <= latent_size <= D:
        raise ValueError(f"latent_size must be an integer in [1, {D}], got {latent_size!r}.")
    _check_sigma2(sigma2)
    top = torch.sort(values, descending=True).values[:latent_size]
    return int((top <= sigma2).sum())
