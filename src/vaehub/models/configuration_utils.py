"""What every vaehub config shares: checked values and the latent's families.

`CheckedConfig` checks every value on construction; a bad one raises `ValueError` naming the
field, the value and what is accepted, and configs loaded with `from_pretrained` are checked
again. `VAEConfig` holds what all VAEs share: the latent size and the prior/posterior
family, with one way to state a committed rate (Razavi et al. 2019). Each family's config
lives in its folder (`models/text`, `models/image`, `models/linear`).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from transformers import PreTrainedConfig

from vaehub.latent import priors
from vaehub.latent.posteriors import POSTERIOR_FAMILIES

PRIOR_FAMILIES = ("standard", "constrained", "ar1")


# Defaults of the richer posteriors (the flows and the auxiliary family of
# `vaehub.latent.posteriors`) when their sizes are not given.
DEFAULT_FLOW_LENGTH = {"planar": 8, "iaf": 2}


DEFAULT_POSTERIOR_HIDDEN_SIZE = 64


ALPHA_SPREADS = ("shared", "linear")


def declared_defaults(config_class: type, fields: tuple[str, ...]) -> dict[str, Any]:
    """The defaults `config_class.__init__` declares for `fields`: a baseline's config takes
    the decoder fields of its VAE's config from there, so that they are written once."""
    parameters = inspect.signature(config_class.__init__).parameters
    return {name: parameters[name].default for name in fields}


def set_declared(config: Any, given: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Set each field of `defaults` on `config`, taken out of `given` (the constructor's
    keyword arguments) where it is there."""
    for name, default in defaults.items():
        setattr(config, name, given.pop(name, default))


def _fail(field: str, value: Any, accepted: str) -> ValueError:
    return ValueError(f"{field}={value!r} is not valid: {accepted}.")


def check_int(field: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(field, value, f"expected an integer >= {minimum}")
    return value


def check_float(
    field: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok_type and math.isfinite(value):
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if above and below:
            return float(value)
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    raise _fail(field, value, f"expected a number in {lo}{low}, {high}{hi}")


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(field, value, f"expected one of {', '.join(map(repr, choices))}")
    return value


class CheckedConfig(PreTrainedConfig):
    """A config whose every value is checked on construction, on `validate()` and after
    `from_pretrained(..., field=value)` overrides, and whose equality sees every field."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # transformers turns every subclass into a dataclass whose generated __eq__ only
        # sees dataclass fields, not the attributes set in __init__; compare everything.
        cls.__eq__ = CheckedConfig.__eq__
        cls.__hash__ = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PreTrainedConfig):
            return NotImplemented

        # Where a config was loaded from says nothing about the model it describes.
        def values(config: PreTrainedConfig) -> dict[str, Any]:
            return {k: v for k, v in config.to_dict().items() if k != "_name_or_path"}

        return type(self) is type(other) and values(self) == values(other)

    __hash__ = None

    def _validate(self) -> None:
        """Check every field; subclasses extend this."""

    def validate(self) -> None:
        """Check every value again (after attributes were changed by hand)."""
        self._validate()

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any):
        # transformers applies `from_pretrained(..., field=value)` overrides after
        # __init__, which would skip validation; check again once they are in.
        out = super().from_dict(config_dict, **kwargs)
        config = out[0] if isinstance(out, tuple) else out
        config.validate()
        return out


class VAEConfig(CheckedConfig):
    r"""What every vaehub VAE shares: the latent code and its prior/posterior family.

    Args:
        latent_size (`int`, defaults to 32):
            Channels d of the latent code: z has shape `(latent_size,)`, or
            `(latent_length, latent_size)` for sequential AR(1) latents.
        prior (`str`, defaults to `"standard"`):
            `"standard"`: p(z) = N(0, I), unconstrained diagonal Gaussian posterior.
            `"constrained"`: p(z) = N(0, I), posterior σ held in
            [`posterior_std_min`, `posterior_std_max`] with `posterior_std_max` < 1, so
            KL ≥ δ (δ-VAE). `"ar1"`: every channel is an AR(1) process over
            `latent_length` positions with coefficient α_k, so KL ≥ δ (δ-VAE).
        posterior_std_min (`float`, defaults to 1e-3):
            σ_l of the constrained family.
        posterior_std_max (`float`, *optional*):
            σ_u of the constrained family. Give this or `committed_rate`.
        ar1_alpha (`float` or `list[float]`, *optional*):
            α of the AR(1) family, one value shared by all channels or one per channel,
            each in [0, 1). Give this or `committed_rate`.
        ar1_alpha_spread (`str`, defaults to `"shared"`):
            How α is resolved from `committed_rate`: `"shared"` (one α for all channels)
            or `"linear"` (α_k = s·(k+1)/d, a spread of time scales, s solved for).
        latent_length (`int`, defaults to 1):
            Positions n of the latent sequence at which the committed rate is stated.
        committed_rate (`float`, *optional*):
            Target δ in nats per example. For `"constrained"` it resolves
            `posterior_std_max`; for `"ar1"` it resolves `ar1_alpha`. After construction
            it always holds the committed rate of the resolved family (0 for
            `"standard"`).
        posterior (`str`, defaults to `"gaussian"`):
            The family of q(z|x) (`vaehub.latent.posteriors`): `"gaussian"` (diagonal, σ as the
            prior family says), `"planar"` or `"iaf"` (that Gaussian through a
            normalizing flow of `flow_length` steps conditioned on the encoder's
            features), or `"auxiliary"` (an auxiliary variable v of `auxiliary_size`
            with q(v|x) q(z|v,x) and a reverse model r(v|x,z)). A flow or auxiliary
            posterior no longer guarantees KL ≥ δ: that is a property of the Gaussian
            families of `"constrained"` and `"ar1"`.
        flow_length (`int`, *optional*):
            Steps of a flow posterior (0 is the Gaussian itself); default 8 planar, 2 IAF.
        posterior_hidden_size (`int`, *optional*):
            Hidden units of the IAF's MADE and the auxiliary family's networks (64).
        auxiliary_size (`int`, *optional*):
            Channels of the auxiliary variable v (default `latent_size`).
    """

    model_type = "vae"

    def __init__(
        self,
        latent_size: int = 32,
        prior: str = "standard",
        posterior_std_min: float = 1e-3,
        posterior_std_max: float | None = None,
        ar1_alpha: float | list[float] | None = None,
        ar1_alpha_spread: str = "shared",
        latent_length: int = 1,
        committed_rate: float | None = None,
        posterior: str = "gaussian",
        flow_length: int | None = None,
        posterior_hidden_size: int | None = None,
        auxiliary_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.latent_size = latent_size
        self.prior = prior
        self.posterior_std_min = posterior_std_min
        self.posterior_std_max = posterior_std_max
        self.ar1_alpha = ar1_alpha
        self.ar1_alpha_spread = ar1_alpha_spread
        self.latent_length = latent_length
        self.committed_rate = committed_rate
        self.posterior = posterior
        self.flow_length = flow_length
        self.posterior_hidden_size = posterior_hidden_size
        self.auxiliary_size = auxiliary_size
        self._validate()
        super().__init__(**kwargs)

    def _validate(self) -> None:
        """Check every field and resolve the committed rate; subclasses extend this."""
        check_int("latent_size", self.latent_size)
        check_choice("prior", self.prior, PRIOR_FAMILIES)
        check_int("latent_length", self.latent_length)
        check_choice("ar1_alpha_spread", self.ar1_alpha_spread, ALPHA_SPREADS)
        check_float(
            "posterior_std_min", self.posterior_std_min, 0.0, 1.0, low_open=True, high_open=True
        )
        if self.committed_rate is not None:
            check_float("committed_rate", self.committed_rate, 0.0, math.inf, high_open=True)

        if self.prior == "standard":
            self._reject_unused(("posterior_std_max", "ar1_alpha"))
            if self.committed_rate not in (None, 0, 0.0):
                raise _fail(
                    "committed_rate",
                    self.committed_rate,
                    "prior='standard' commits to no rate; use prior='constrained' "
                    "or 'ar1' to state a positive committed_rate",
                )
            self.committed_rate = 0.0
        elif self.prior == "constrained":
            self._reject_unused(("ar1_alpha",))
            self._resolve_constrained()
        else:
            self._reject_unused(("posterior_std_max",))
            self._resolve_ar1()
        self._resolve_posterior()

    def _reject_unused(self, fields: tuple[str, ...], by: str = "prior") -> None:
        for field in fields:
            value = getattr(self, field)
            if value is not None:
                raise _fail(
                    field, value, f"it is not used by {by}={getattr(self, by)!r}; leave it unset"
                )

    def _resolve_posterior(self) -> None:
        check_choice("posterior", self.posterior, POSTERIOR_FAMILIES)
        if self.posterior == "gaussian":
            self._reject_unused(
                ("flow_length", "posterior_hidden_size", "auxiliary_size"), "posterior"
            )
            return
        if self.posterior in DEFAULT_FLOW_LENGTH:
            self._reject_unused(("auxiliary_size",), "posterior")
            if self.flow_length is None:
                self.flow_length = DEFAULT_FLOW_LENGTH[self.posterior]
            check_int("flow_length", self.flow_length, minimum=0)
        else:
            self._reject_unused(("flow_length",), "posterior")
            if self.auxiliary_size is None:
                self.auxiliary_size = self.latent_size
            check_int("auxiliary_size", self.auxiliary_size)
        if self.posterior_hidden_size is None:
            self.posterior_hidden_size = DEFAULT_POSTERIOR_HIDDEN_SIZE
        check_int("posterior_hidden_size", self.posterior_hidden_size)

    def _resolve_constrained(self) -> None:
        # Every latent value is constrained: latent_size channels at latent_length positions.
        d = self.latent_size * self.latent_length
        if self.posterior_std_max is None:
            if self.committed_rate is None:
                raise _fail(
                    "posterior_std_max",
                    None,
                    "prior='constrained' needs posterior_std_max (σ_u < 1) or a target "
                    "committed_rate (nats)",
                )
            self.posterior_std_max = priors.std_max_for_committed_rate(self.committed_rate, d)
        check_float(
            "posterior_std_max",
            self.posterior_std_max,
            self.posterior_std_min,
            1.0,
            low_open=True,
            high_open=True,
        )
        rate = priors.constrained_committed_rate(self.posterior_std_max, d)
        self._check_rate_agrees(rate)

    def _resolve_ar1(self) -> None:
        d, n = self.latent_size, self.latent_length
        if self.ar1_alpha is None:
            if self.committed_rate is None:
                raise _fail(
                    "ar1_alpha",
                    None,
                    "prior='ar1' needs ar1_alpha (in [0, 1)) or a target committed_rate (nats)",
                )
            if n < 2:
                raise _fail(
                    "latent_length",
                    n,
                    "an AR(1) prior commits to a rate only over 2 or more positions",
                )
            alphas = priors.ar1_alpha_for_committed_rate(
                self.committed_rate, d, n, self.ar1_alpha_spread
            )
            self.ar1_alpha = alphas[0] if self.ar1_alpha_spread == "shared" else alphas
        alphas = self.ar1_alpha if isinstance(self.ar1_alpha, list) else [self.ar1_alpha]
        if len(alphas) not in (1, d):
            raise _fail("ar1_alpha", self.ar1_alpha, f"expected one α or latent_size={d} of them")
        for alpha in alphas:
            check_float("ar1_alpha", alpha, 0.0, 1.0, high_open=True)
        rate = priors.ar1_committed_rate(self.ar1_alphas(), n)
        self._check_rate_agrees(rate)

    def _check_rate_agrees(self, rate: float) -> None:
        if self.committed_rate is not None and not math.isclose(
            rate, self.committed_rate, rel_tol=1e-6, abs_tol=1e-6
        ):
            raise _fail(
                "committed_rate",
                self.committed_rate,
                f"the family's parameters commit to {rate:.6g} nats; give either the "
                "parameters or the committed_rate, not both",
            )
        self.committed_rate = rate

    def ar1_alphas(self) -> list[float]:
        """The AR(1) coefficient of every channel, `latent_size` values."""
        if self.ar1_alpha is None:
            return []
        alphas = self.ar1_alpha if isinstance(self.ar1_alpha, list) else [self.ar1_alpha]
        if len(alphas) == 1:
            alphas = alphas * self.latent_size
        return [float(a) for a in alphas]
