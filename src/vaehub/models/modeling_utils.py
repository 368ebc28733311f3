"""What every vaehub model does the same way when it is saved, loaded and shared.

- `from_pretrained` checks the folder or repository first (`vaehub.models.checkpoints`): a
  missing, foreign, corrupt or mismatched checkpoint gets an error naming the file.
- The evaluation results (`eval_<split>.json`) and training summary (`training.json`) of
  a model travel with it: loaded into `model.evaluation_results` / `model.training_summary`
  and written back by `save_pretrained`.
- `push_to_hub` uploads what `save_pretrained` writes, with a model card rendered from
  those results (`vaehub.models.results`).
- `elbo_terms` is the forward pass every model shares:

      encoder → PosteriorParameters λ ─▶ posterior q(z|x) (config.posterior)
              ─▶ z ~ q (with log q) ─▶ KL(q‖p) (`vaehub.latent.kl`) ─▶ −log p(x|z)
              ─▶ per-example terms (the model's output class)

  A model supplies `posterior_parameters(**batch)` (its encoder), `reconstruction(batch,
  z)` (its decoder) and `output_class`; SVI refinement (`vaehub.latent.svi`) replaces λ.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution
from transformers import PreTrainedModel

from vaehub.latent import svi
from vaehub.latent.kl import latent_kl
from vaehub.latent.posteriors import PosteriorParameters
from vaehub.latent.refinement import Refinement
from vaehub.models import checkpoints, results

# Result files looked for on the Hub, where a folder cannot be listed cheaply.
# The Hub layer sits above the models and registers its upload here when it is imported
# (`import vaehub` always imports it): `push_to_hub` calls it without importing upwards.
_folder_pusher: Callable[..., str] | None = None


def register_folder_pusher(push: Callable[..., str]) -> None:
    """Make `push(folder, repo_id, **options) -> url` the upload `push_to_hub` uses."""
    global _folder_pusher
    _folder_pusher = push


RESULT_FILES = ("eval_test.json", "eval_validation.json", results.TRAINING_FILE)


class VAEPreTrainedModel(PreTrainedModel):
    """Base of the vaehub models: checked loading, results that travel, Hub sharing."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.evaluation_results: dict[str, dict[str, Any]] = {}
        self.training_summary: dict[str, Any] = {}

    def sample_prior(self, num_samples: int | None) -> Tensor:
        """`num_samples` (default 1) latents from p(z): `(num_samples, *latent_shape)`."""
        return self.prior.sample((checked_num_samples(num_samples),))

    def latents_to_decode(self, z: Tensor | None, num_samples: int | None) -> Tensor:
        """The caller's `z`, or `num_samples` (default 1) draws from p(z) when none is given."""
        if z is None:
            return self.sample_prior(num_samples)
        if not isinstance(z, Tensor):
            raise ValueError(
                f"z must be a tensor of latents, got {type(z).__name__}; to draw latents "
                "from the prior, pass num_samples=N."
            )
        if num_samples is not None:
            raise ValueError("give either z or num_samples, not both.")
        check_finite_latent(z)
        if z.dim() > 0:
            check_decoded_at_once(z.shape[0], "z.shape[0]")
        largest = float(z.abs().max()) if z.numel() else 0.0
        if largest > MAX_LATENT_MAGNITUDE:
            # Finite, but the decoder's initial state saturates or overflows: it would
            # decode to '' without a word.
            raise ValueError(
                f"z holds a latent of magnitude {largest:.3g}, beyond {MAX_LATENT_MAGNITUDE:g} "
                "(the prior's scale is 1): the decoder cannot decode it meaningfully. Give "
                "latents on the prior's scale."
            )
        return z

    @staticmethod
    def latent_for(posterior: Any, z: Tensor | None) -> Tensor:
        """The latent a forward pass decodes: a reparameterised sample of q(z|x), or the
        caller's `z`, checked to have the posterior's shape."""
        if z is None:
            return posterior.rsample()
        if z.shape != posterior.mean.shape:
            raise ValueError(
                f"z must have shape {tuple(posterior.mean.shape)}, got {tuple(z.shape)}."
            )
        check_finite_latent(z)
        return z

    @property
    def inference_refinement(self) -> dict[str, float] | None:
        """The SVI refinement (Kim et al. 2018) a model trained with it infers with:
        `{"refine_steps", "refine_lr", "refine_momentum", "refine_max_grad_norm"}`, or
        `None` for a model whose encoder's posterior is the one to use.

        It is `config.inference_refinement`, which training with `objective="sa_vae"`
        records; for an SA-VAE saved before that field existed, the refinement its own
        evaluation results were measured with.
        """
        recorded = getattr(self.config, "inference_refinement", None)
        if not recorded and self.training_summary.get("objective") == "sa_vae":
            measured = [r.get("metrics", {}) for r in self.evaluation_results.values()]
            recorded = next((m for m in measured if m.get("refine_steps")), None)
        if not recorded or not recorded.get("refine_steps"):
            return None
        return Refinement.from_record(recorded).record()

    def infer(
        self,
        batch: dict[str, Tensor],
        refine: bool | None = None,
        parameters: PosteriorParameters | None = None,
    ) -> Distribution:
        """q(z|x) for a checked batch as a user should see it: refined by the model's own
        `inference_refinement` when it has one (unless `refine=False`), the encoder's
        otherwise. `refine=True` on a model without a recorded refinement is refused.

        Args:
            parameters: the encoder's λ for the batch, when already computed.
        """
        if parameters is None:
            parameters = self.posterior_parameters(**batch)
        settings = self.inference_refinement
        if refine and settings is None:
            raise ValueError(
                f"refine=True: this {self.config.model_type} model records no SVI refinement "
                "(only a model trained with objective='sa_vae' does); leave refine out."
            )
        if settings is not None and refine is not False:
            parameters = svi.refine_with(
                self, batch, parameters, Refinement.from_record(settings)
            )
        return self.posterior_from(parameters)

    def prior_for(self, **batch: Any) -> Any:
        """p(z) for a batch; the same for every batch unless a model says otherwise."""
        return self.prior

    # --- the forward skeleton every model shares ---------------------------------------

    def posterior_parameters(self, **batch: Any) -> PosteriorParameters:
        """The encoder's λ = (μ, scale) and features for a batch, checked."""
        raise NotImplementedError

    def reconstruction(
        self, batch: dict[str, Tensor], z: Tensor, keep_logits: bool = True
    ) -> tuple[Tensor, Any]:
        """−log p(x|z) per example `(batch,)` in training mode's decoder, and its logits
        (which a model may skip without `keep_logits`)."""
        raise NotImplementedError

    def output_extras(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Fields of the output class beyond the ELBO's parts."""
        return {}

    def posterior_from(self, parameters: PosteriorParameters) -> Distribution:
        """q(z|x) of the config's posterior family for these parameters."""
        return self.posterior_head(parameters, self.prior)

    def inference_network_parameters(self) -> list[nn.Parameter]:
        """φ: the encoder's and the posterior family's own weights (flows, auxiliary)."""
        return list(self.encoder.parameters()) + list(self.posterior_head.parameters())

    def elbo_terms(
        self,
        batch: dict[str, Tensor],
        parameters: PosteriorParameters,
        z: Tensor | None = None,
        keep_logits: bool = True,
    ) -> Any:
        """The ELBO's parts for a checked batch and the posterior's parameters.

        Args:
            z: `(batch, *latent_shape)` a latent to decode instead of a sample of q(z|x).
            keep_logits: return the decoder's logits; training does without them.
        """
        posterior = self.posterior_from(parameters)
        if z is None:
            z, log_q = posterior.rsample_and_log_prob()
        else:
            z, log_q = self.latent_for(posterior, z), None
        kl, kl_per_dim = latent_kl(posterior, self.prior_for(**batch), z, log_q)
        nll, logits = self.reconstruction(batch, z, keep_logits)
        return self.output_class(
            loss=(nll + kl).mean(),
            reconstruction_nll=nll,
            kl=kl,
            kl_per_dim=kl_per_dim,
            logits=logits,
            z=z,
            posterior_mean=posterior.mean,
            posterior_std=getattr(posterior, "std", None),
            **self.output_extras(batch),
        )

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """Write the weights (`model.safetensors`), `config.json`, `generation_config.json`,
        and what travels with the model: its tokenizer, evaluation results and training
        summary."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            for split, record in self.evaluation_results.items():
                results.write_results(
                    save_directory,
                    split,
                    record.get("metrics", {}),
                    record.get("dataset"),
                    **{k: v for k, v in record.items() if k not in ("split", "dataset", "metrics")},
                )
            if self.training_summary:
                results.write_training_summary(save_directory, self.training_summary)
            self._save_extras(save_directory)
        return result

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any
    ) -> VAEPreTrainedModel:
        """Load a model, and what was saved with it, from a folder or the Hub.

        Raises `vaehub.CheckpointError` naming the folder, repository or file when it
        holds no model of this kind, a corrupt weights file, or weights whose sizes differ
        from the config.
        """
        hub_kwargs = {k: kwargs.get(k) for k in checkpoints.HUB_KWARGS}
        config_dict = checkpoints.read_config_dict(
            pretrained_model_name_or_path, (cls.config_class.model_type,), hub_kwargs
        )
        config = kwargs.get("config")
        if not isinstance(config, cls.config_class):
            try:
                config = cls.config_class.from_dict(dict(config_dict))
            except ValueError as error:
                raise checkpoints.CheckpointError(
                    f"the config.json of {pretrained_model_name_or_path} is not valid: {error}"
                ) from error
        with torch.device("meta"):
            shapes = {k: v.shape for k, v in cls(config).state_dict().items()}
        checkpoints.check_weights(pretrained_model_name_or_path, shapes, hub_kwargs)
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        checkpoints.check_finite_weights(model, pretrained_model_name_or_path)
        model._load_results(pretrained_model_name_or_path, hub_kwargs)
        model._load_extras(pretrained_model_name_or_path, hub_kwargs)
        return model

    def _load_results(self, name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any]) -> None:
        if os.path.isdir(name_or_path):
            self.evaluation_results = results.read_results(name_or_path)
            path = os.path.join(name_or_path, results.TRAINING_FILE)
            paths = [path] if os.path.isfile(path) else []
        else:
            paths = []
            for filename in RESULT_FILES:
                try:
                    paths.append(checkpoints.resolve_file(name_or_path, filename, hub_kwargs))
                except checkpoints.CheckpointError:
                    continue
            self.evaluation_results = {}
            for path in paths:
                if os.path.basename(path).startswith(results.EVAL_PREFIX):
                    with open(path, encoding="utf-8") as handle:
                        record = json.load(handle)
                    self.evaluation_results[record.get("split", "test")] = record
        for path in paths:
            if os.path.basename(path) == results.TRAINING_FILE:
                with open(path, encoding="utf-8") as handle:
                    self.training_summary = json.load(handle)

    def _save_extras(self, save_directory: str | os.PathLike) -> None:
        """Files a model kind saves besides the shared ones (a tokenizer, say)."""

    def _load_extras(self, name_or_path: str | os.PathLike, hub_kwargs: dict[str, Any]) -> None:
        """Files a model kind loads besides the shared ones."""

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        card: bool = True,
        **kwargs: Any,
    ) -> str:
        """Upload the model — weights, config, generation config, tokenizer, results — and
        its model card, rendered from `evaluation_results` (see `vaehub.hub`).

        Args:
            card: render README.md from the evaluation results; refuses, naming what is
                missing, when the model has none (pass `card=False` to push without).
        Returns:
            the URL of the commit.
        Raises:
            vaehub.hub.transfer.HubError: the upload failed; nothing local was changed.
        """
        with tempfile.TemporaryDirectory(prefix="vaehub-save-") as folder:
            self.save_pretrained(folder, **kwargs)
            if _folder_pusher is None:  # only when vaehub.hub was never imported
                raise RuntimeError("push_to_hub needs `import vaehub` (it registers the upload)")
            return _folder_pusher(
                folder,
                repo_id,
                private=private,
                revision=revision,
                commit_message=commit_message,
                token=token,
                card=card,
                create_pr=create_pr,
                source=f"this {type(self).__name__}",
            )


def in_loss_precision(logits: Tensor) -> Tensor:
    """Logits in at least float32 for the log-softmax of a loss: bfloat16 or float16 under
    autocast are raised to float32, float64 stays float64."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


# The largest |z| decoded: 10^4 prior standard deviations; 1e30 overflows the decoder's state.
MAX_LATENT_MAGNITUDE = 1e4
# The most examples one call decodes at once: generation keeps every row's decoder state
# and logits together (10^7 sentences or images would ask for one allocation of gigabytes).
MAX_DECODED_AT_ONCE = 4096


def check_decoded_at_once(count: int, name: str) -> None:
    """Refuse a decoding call of more than `MAX_DECODED_AT_ONCE` rows, saying the size
    asked and the limit."""
    if count > MAX_DECODED_AT_ONCE:
        raise ValueError(
            f"{name}={count:,} asks one call to decode {count:,} examples at once; the limit "
            f"is {MAX_DECODED_AT_ONCE:,} (their decoder states and logits are held together "
            f"in memory). Call it in batches of at most {MAX_DECODED_AT_ONCE:,}."
        )


# Sentences or images the encoder reads at once in `encode`: a corpus in one pass asks for
# gigabytes; in chunks, memory stays that of one chunk (without gradients).
ENCODED_AT_ONCE = 512


def encode_in_chunks(posterior_parameters: Any, input_ids: Tensor, attention_mask: Tensor) -> Any:
    """`posterior_parameters(input_ids, attention_mask)`, computed `ENCODED_AT_ONCE` rows
    at a time and joined along the batch."""
    from dataclasses import fields, replace

    rows = input_ids.shape[0]
    if rows <= ENCODED_AT_ONCE:
        return posterior_parameters(input_ids, attention_mask)
    parts = [
        posterior_parameters(
            input_ids[i : i + ENCODED_AT_ONCE], attention_mask[i : i + ENCODED_AT_ONCE]
        )
        for i in range(0, rows, ENCODED_AT_ONCE)
    ]
    joined = {
        field.name: torch.cat([getattr(part, field.name) for part in parts])
        for field in fields(parts[0])
        if isinstance(getattr(parts[0], field.name), Tensor)
    }
    return replace(parts[0], **joined)


def checked_num_samples(num_samples: int | None) -> int:
    """How many samples to draw: `num_samples`, 1 when `None`, refused unless positive
    and at most `MAX_DECODED_AT_ONCE`."""
    count = 1 if num_samples is None else num_samples
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    check_decoded_at_once(count, "num_samples")
    return count


def check_finite_latent(z: Tensor) -> None:
    """Refuse a latent holding NaN or infinity: it would decode to nothing, silently."""
    if isinstance(z, Tensor) and z.is_floating_point() and not torch.isfinite(z).all():
        count = int((~torch.isfinite(z)).sum())
        raise ValueError(
            f"z holds {count} NaN or infinite value{'s' if count > 1 else ''}; give finite "
            "latents, e.g. posterior.mean or model.sample_prior(n)."
        )


INTERPOLATION_METHODS = ("lerp", "slerp")


def interpolate_latents(z_a: Tensor, z_b: Tensor, steps: int, method: str = "lerp") -> Tensor:
    """`steps` evenly spaced points t in [0, 1] on the path from z_a to z_b.

    `"lerp"`: z(t) = (1 − t)·z_a + t·z_b (Bowman et al. 2016). `"slerp"`: along the great
    circle, z(t) = sin((1 − t)Ω)/sin Ω · z_a + sin(tΩ)/sin Ω · z_b with cos Ω the cosine of
    the angle between them (White 2016), which keeps the norm a sample of a Gaussian prior
    has, where the straight line passes nearer the origin; parallel latents take the line.

    Args:
        z_a, z_b: latents of one example, any shape (`(latent_size,)`, `(steps, latent_size)`).
    Returns:
        `(steps, *z_a.shape)`.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2 (both ends included), got {steps!r}.")
    if method not in INTERPOLATION_METHODS:
        raise ValueError(f"method={method!r} is not valid: expected 'lerp' or 'slerp'.")
    check_decoded_at_once(steps, "steps")
    t = torch.linspace(0, 1, steps, device=z_a.device, dtype=z_a.dtype)
    t = t.view(steps, *([1] * z_a.dim()))
    if method == "slerp":
        a, b = z_a.detach().flatten().double(), z_b.detach().flatten().double()
        cosine = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-30)
        omega = torch.arccos(cosine.clamp(-1.0, 1.0))
        if float(torch.sin(omega)) > 1e-6:
            t64 = t.double()
            weight_a = torch.sin((1 - t64) * omega) / torch.sin(omega)
            weight_b = torch.sin(t64 * omega) / torch.sin(omega)
            return (weight_a * z_a.double() + weight_b * z_b.double()).to(z_a.dtype)
    return (1 - t) * z_a + t * z_b


class Interpolation(list):
    """The decodings along a latent path, a list, with what they were decoded from.

    Attributes:
        inputs: the two inputs (sentences) the path runs between.
        endpoints: the decodings of the two ends' own latents (t = 0 and t = 1).
        t: the points of the path, in [0, 1].
        method: `"lerp"` or `"slerp"`.
    """

    def __init__(
        self, decodings: Sequence[Any], inputs: tuple[Any, Any], t: Sequence[float], method: str
    ) -> None:
        super().__init__(decodings)
        self.inputs = inputs
        self.endpoints = (decodings[0], decodings[-1])
        self.t = [float(x) for x in t]
        self.method = method
