"""The work of each explorer tab, as functions of a model and plain values (no Gradio).

Every function checks what a person could have typed (`UserError` with a message to show
them), calls vaehub's own entry points (`generate_sentences`, `reconstruct`,
`interpolate`, `encode`, `generate`, `vaehub.evaluation.diagnose`) and returns plain data: lists of
strings, floats, pandas frames and PIL images.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vaehub.app.models import Job, UserError, model_kind

# What one request may ask for: enough to explore, small enough to answer fast on a CPU.
MAX_CHARS = 300  # per sentence typed
MAX_SENTENCES = 32  # diagnose's probe sentences
MAX_SAMPLES = 16  # sentences sampled at once
MAX_STEPS = 12  # points on an interpolation path
MAX_BEAMS = 8
MAX_NEW_TOKENS = 128
MAX_IMAGES = 16
MAX_POSTERIOR_SAMPLES = 8

STRATEGIES = ("default", "greedy", "beam", "sample")


# --- checking what was typed --------------------------------------------------------------


def checked_sentence(text: Any, what: str = "the sentence") -> str:
    """`text` stripped, refused when empty, not text, or longer than `MAX_CHARS`."""
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"Type {what} first: it is empty.")
    text = " ".join(text.split())
    if len(text) > MAX_CHARS:
        raise UserError(
            f"{what[0].upper() + what[1:]} is {len(text)} characters long; the explorer takes "
            f"at most {MAX_CHARS}."
        )
    return text


def checked_count(value: Any, what: str, low: int, high: int) -> int:
    """A whole number in [low, high] from a slider or number box, else a `UserError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number, got {value!r}.") from None
    if number != int(number) or not low <= number <= high:
        raise UserError(f"{what} must be a whole number from {low} to {high}, got {value!r}.")
    return int(number)


def escape(text: str) -> str:
    """Text made safe to place in Markdown or HTML: tags (`<unk>` too) shown, not run."""
    # Markdown's own marks first (they would read as emphasis, links or code), then the
    # HTML ones; quotes need no entity outside an attribute.
    for char in "\\`*_[]()#|~":
        text = text.replace(char, "\\" + char)
    return html.escape(text, quote=False)


def require(model: nn.Module, *kinds: str) -> str:
    """The model's kind, refused with a message when this tab does not fit it."""
    kind = model_kind(model)
    if kind in kinds:
        return kind
    what = {
        "text_vae": "a text VAE",
        "text_lm": "a language model with no latent",
        "image_vae": "an image VAE",
        "image_lm": "a PixelCNN with no latent",
        "other": f"a {model.config.model_type} model",
    }[kind]
    wanted = " or ".join(
        {
            "text_vae": "a text VAE",
            "text_lm": "a text model",
            "image_vae": "an image VAE",
            "image_lm": "an image model",
        }[k]
        for k in kinds
    )
    raise UserError(f"This model is {what}; this tab needs {wanted}.")


@dataclass
class Decoding:
    """The decoding chosen in the page, as `generate_sentences` & co. take it.

    `default` leaves the model's own (`vaehub.models.text.decoding.DEFAULT_DECODING`: 4 beams, no
    repeated trigram); `greedy` is plain greedy decoding; `beam` uses `num_beams`;
    `sample` draws tokens with `temperature`, `top_k` (0: off) and `top_p`.
    """

    strategy: str = "default"
    num_beams: int = 4
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    allow_unk: bool = False
    max_new_tokens: int | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments for the text entry points; bad values refused here."""
        if self.strategy not in STRATEGIES:
            raise UserError(f"Decoding must be one of {', '.join(STRATEGIES)}.")
        options: dict[str, Any] = {"allow_unk": bool(self.allow_unk)}
        if self.max_new_tokens:
            options["max_new_tokens"] = checked_count(
                self.max_new_tokens, "Max new tokens", 1, MAX_NEW_TOKENS
            )
        if self.strategy == "greedy":
            options.update(num_beams=1, no_repeat_ngram_size=0)
        elif self.strategy == "beam":
            options["num_beams"] = checked_count(self.num_beams, "Beams", 1, MAX_BEAMS)
        elif self.strategy == "sample":
            temperature, top_p = float(self.temperature), float(self.top_p)
            if not 0.05 <= temperature <= 5:
                raise UserError(f"Temperature must lie in [0.05, 5], got {temperature:g}.")
            if not 0 < top_p <= 1:
                raise UserError(f"Top-p must lie in (0, 1], got {top_p:g}.")
            options.update(do_sample=True, temperature=temperature, top_p=top_p)
            top_k = checked_count(self.top_k, "Top-k", 0, 100000)
            if top_k:
                options["top_k"] = top_k
        return options

    def label(self) -> str:
        """A short description for a results table."""
        if self.strategy == "beam":
            return f"beam search, {self.num_beams} beams"
        if self.strategy == "sample":
            parts = [f"T = {float(self.temperature):g}"]
            if self.top_k:
                parts.append(f"top-k {self.top_k}")
            if float(self.top_p) < 1:
                parts.append(f"top-p {float(self.top_p):g}")
            return "sampling, " + ", ".join(parts)
        return {"default": "default (4 beams, no repeated trigram)", "greedy": "greedy"}[
            self.strategy
        ]


# Shown side by side by "same z, other decodings".
DECODING_VIEWS = (
    Decoding("greedy"),
    Decoding("default"),
    Decoding("beam", num_beams=8),
    Decoding("sample", temperature=0.7),
    Decoding("sample", top_p=0.9),
    Decoding("sample", temperature=1.0, top_k=20),
)


def unknown_words(model: nn.Module, text: str) -> list[str]:
    """The words of `text` the model's tokenizer maps to `<unk>`, in order."""
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise UserError("This model has no tokenizer to read sentences with.")
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    unk = model.config.unk_token_id
    return [
        text[start:end]
        for token, (start, end) in zip(
            encoding["input_ids"], encoding["offset_mapping"], strict=True
        )
        if token == unk
    ]


def unknown_note(words: Sequence[str]) -> str:
    """A line saying how many words became `<unk>` (empty when none did); Markdown-safe."""
    if not words:
        return ""
    shown = ", ".join(escape(word) for word in list(dict.fromkeys(words))[:10])
    return (
        f"{len(words)} word(s) are not in the model's vocabulary and became "
        f"{escape('<unk>')}: {shown}."
    )


# --- text tabs ----------------------------------------------------------------------------


def sample_sentences(
    model: nn.Module, num_samples: int, seed: int, decoding: Decoding
) -> list[str]:
    """Sentences decoded from z ~ p(z) (a language model: from `<s>`), seeded."""
    require(model, "text_vae", "text_lm")
    count = checked_count(num_samples, "Samples", 1, MAX_SAMPLES)
    options = decoding.options()
    torch.manual_seed(checked_count(seed, "Seed", 0, 2**31 - 1))
    with torch.no_grad():
        return model.generate_sentences(num_samples=count, **options)


def same_z_decodings(
    model: nn.Module, seed: int, views: Sequence[Decoding] = DECODING_VIEWS, allow_unk: bool = False
) -> list[tuple[str, str]]:
    """One z ~ p(z), decoded with each decoding of `views`: `(label, sentence)` pairs."""
    require(model, "text_vae")
    torch.manual_seed(checked_count(seed, "Seed", 0, 2**31 - 1))
    z = model.sample_prior(1)  # (1, latent_size); sequential latents (1, steps, latent_size)
    rows = []
    for view in views:
        view.allow_unk = allow_unk
        torch.manual_seed(seed)  # each sampling view draws its tokens from the same seed
        with torch.no_grad():
            rows.append((view.label(), model.generate_sentences(z, **view.options())[0]))
    return rows


@dataclass
class Reconstruction:
    """A sentence, its posterior and what decodes from it.

    Attributes:
        mean, std: the posterior's per-dimension mean and standard deviation,
            `latent_size` floats (sequential latents: averaged over the sentence's steps).
        kl_per_dim: KL(q(z|x) ‖ p(z)) of each latent dimension for this sentence, nats.
        from_mean: the decoding of the posterior mean.
        from_samples: the decodings of posterior samples.
    """

    sentence: str
    unknown: list[str]
    mean: list[float]
    std: list[float]
    kl_per_dim: list[float]
    kl: float
    from_mean: str
    from_samples: list[str] = field(default_factory=list)

    def table(self) -> Any:
        """The posterior per dimension as a pandas frame (dimension, mean, std, KL)."""
        import pandas as pd

        width = len(str(len(self.mean)))
        return pd.DataFrame(
            {
                "dimension": [f"z{i + 1:0{width}d}" for i in range(len(self.mean))],
                "mean": self.mean,
                "std": self.std,
                "KL (nats)": self.kl_per_dim,
            }
        )


def reconstruct_sentence(
    model: nn.Module, text: str, posterior_samples: int, seed: int, decoding: Decoding
) -> Reconstruction:
    """x → q(z|x) → decodings of its mean and of `posterior_samples` samples."""
    require(model, "text_vae")
    sentence = checked_sentence(text)
    samples = checked_count(posterior_samples, "Posterior samples", 0, MAX_POSTERIOR_SAMPLES)
    seed = checked_count(seed, "Seed", 0, 2**31 - 1)
    options = decoding.options()
    unknown = unknown_words(model, sentence)
    torch.manual_seed(seed)
    with torch.no_grad():
        input_ids, attention_mask = model.tokenize([sentence])
        # The forward pass's KL per dimension is the model's own (its prior, its family).
        kl_per_dim = model(input_ids, attention_mask).kl_per_dim[0].float()  # (latent_size,)
    posterior = model.encode([sentence])
    mean, std = posterior.mean.detach().float(), posterior.std.detach().float()
    if mean.dim() == 3:  # sequential latents (1, steps, d): the average over the steps
        mean, std = mean.mean(1), std.mean(1)
    with torch.no_grad():
        from_mean = model.reconstruct([sentence], **options)[0]
        from_samples = (
            model.reconstruct([sentence] * samples, sample=True, **options) if samples else []
        )
    return Reconstruction(
        sentence,
        unknown,
        mean[0].tolist(),
        std[0].tolist(),
        kl_per_dim.tolist(),
        float(kl_per_dim.sum()),
        from_mean,
        from_samples,
    )


@dataclass
class LatentPath:
    """Decodings along a latent path between two sentences (or the ends of an analogy)."""

    inputs: tuple[str, str]
    t: list[float]
    sentences: list[str]
    method: str
    unknown: list[str]

    def at(self, index: Any) -> str:
        """The sentence at point `index` of the path (a slider's value), clamped."""
        if not self.sentences:
            return ""
        try:
            position = int(round(float(index)))
        except (TypeError, ValueError):
            position = 0
        position = max(0, min(position, len(self.sentences) - 1))
        return self.sentences[position]


def interpolate_sentences(
    model: nn.Module, text_a: str, text_b: str, steps: int, method: str, decoding: Decoding
) -> LatentPath:
    """The decodings of `steps` points between two sentences' posterior means."""
    require(model, "text_vae")
    a = checked_sentence(text_a, "the first sentence")
    b = checked_sentence(text_b, "the second sentence")
    count = checked_count(steps, "Steps", 2, MAX_STEPS)
    if method not in ("lerp", "slerp"):
        raise UserError("The path must be lerp or slerp.")
    unknown = unknown_words(model, a) + unknown_words(model, b)
    with torch.no_grad():
        path = model.interpolate(a, b, count, method=method, **decoding.options())
    return LatentPath((a, b), list(path.t), list(path), method, unknown)


@dataclass
class Analogy:
    """a : b :: c : ?, answered by decoding z_c + (z_b − z_a) (posterior means)."""

    a: str
    b: str
    c: str
    answer: str
    c_alone: str
    unknown: list[str]
    shift_norm: float


def analogy(model: nn.Module, a: str, b: str, c: str, decoding: Decoding) -> Analogy:
    """Latent arithmetic on posterior means: decode μ_c + (μ_b − μ_a)."""
    require(model, "text_vae")
    if getattr(model, "sequential", False):
        raise UserError(
            "This model's latent is a sequence as long as each sentence; latent arithmetic "
            "needs one vector per sentence. Choose a model with a single latent vector."
        )
    texts = [
        checked_sentence(a, "sentence a"),
        checked_sentence(b, "sentence b"),
        checked_sentence(c, "sentence c"),
    ]
    unknown = [word for text in texts for word in unknown_words(model, text)]
    options = decoding.options()
    with torch.no_grad():
        means = model.encode(texts).mean.float()  # (3, latent_size)
        shift = means[1] - means[0]
        z = torch.stack([means[2] + shift, means[2]])  # (2, latent_size)
        answer, c_alone = model.generate_sentences(z, **options)
    return Analogy(*texts, answer, c_alone, unknown, float(shift.norm()))


# --- images -------------------------------------------------------------------------------


def _grid(images: torch.Tensor, columns: int) -> Any:
    """`(batch, channels, H, W)` images (0/1 or 0–255) → one PIL image, through
    `vaehub.save_image_grid` so the page shows what `vaehub generate` writes."""
    from PIL import Image

    from vaehub.models.image.modeling_delta_vae import save_image_grid

    handle, path = tempfile.mkstemp(suffix=".png", prefix="vaehub-app-")
    os.close(handle)
    try:
        save_image_grid(images, path, columns=columns)
        with Image.open(path) as picture:
            return picture.copy()
    finally:
        os.remove(path)


def _pixel_passes(model: nn.Module) -> int:
    return int(model.config.image_size) ** 2


def sample_images(
    model: nn.Module,
    num_samples: int,
    seed: int,
    greedy: bool,
    job: Job | None = None,
    report: Callable[[int, int], None] | None = None,
) -> Any:
    """A grid of images drawn from the model (z ~ p(z) for a δ-VAE), seeded; pixel by
    pixel, so long: `report(done, total)` follows the passes and `job` can stop it."""
    require(model, "image_vae", "image_lm")
    count = checked_count(num_samples, "Samples", 1, MAX_IMAGES)
    seed = checked_count(seed, "Seed", 0, 2**31 - 1)
    torch.manual_seed(seed)  # the prior draw
    generator = torch.Generator().manual_seed(seed)  # the pixels
    job = job or Job()
    with job.watching(model, model.decoder, _pixel_passes(model), report):
        images = model.generate(num_samples=count, greedy=bool(greedy), generator=generator)
    return _grid(images, columns=min(count, 8))


def interpolate_images(
    model: nn.Module,
    steps: int,
    method: str,
    seed: int,
    greedy: bool,
    ends: tuple[torch.Tensor, torch.Tensor] | None = None,
    end_seeds: tuple[int, int] = (1, 2),
    job: Job | None = None,
    report: Callable[[int, int], None] | None = None,
) -> Any:
    """A row of images along a latent path, the same pixel noise at every step.

    Args:
        ends: two `(channels, H, W)` images (test digits): the path joins their posterior
            means (`DeltaVAEModel.interpolate`), shown at both ends of the row. Without
            them the path joins two latents drawn from the prior with `end_seeds`.
    """
    from vaehub.models.modeling_utils import interpolate_latents

    require(model, "image_vae")
    count = checked_count(steps, "Steps", 2, MAX_STEPS)
    seed = checked_count(seed, "Seed", 0, 2**31 - 1)
    if method not in ("lerp", "slerp"):
        raise UserError("The path must be lerp or slerp.")
    job = job or Job()
    with job.watching(model, model.decoder, count * _pixel_passes(model), report):
        if ends is not None:
            path = model.interpolate(ends[0], ends[1], count, seed, bool(greedy), method=method)
            row = torch.cat([ends[0][None].to(path), path, ends[1][None].to(path)])
            return _grid(row, columns=count + 2)
        latents = []
        for end_seed in end_seeds:
            torch.manual_seed(checked_count(end_seed, "End seed", 0, 2**31 - 1))
            latents.append(model.sample_prior(1)[0])
        z = interpolate_latents(latents[0], latents[1], count, method)  # (steps, *latent_shape)
        images = [
            model.decode(
                z[i : i + 1], greedy=bool(greedy), generator=torch.Generator().manual_seed(seed)
            )
            for i in range(count)
        ]
    return _grid(torch.cat(images), columns=count)


def test_images(data: str) -> Any:
    """The test split of `data` (an MNIST or Omniglot folder, or `digits`): a
    `datasets.Dataset` of images."""
    from vaehub.data.sources import image_dataset_kind, load_images

    kind = image_dataset_kind(data)
    return load_images(kind, None if kind == "digits" else data, "test")


def pick_images(images: Any, index_a: Any, index_b: Any, model: nn.Module) -> tuple[Any, Any]:
    """Two test images by index, as `(channels, H, W)` tensors the model takes."""
    from vaehub.data.images import image_batches

    indices = [checked_count(i, "Image index", 0, len(images) - 1) for i in (index_a, index_b)]
    pair = next(image_batches(images.select(indices), 2, seed=0))["pixel_values"]
    if tuple(pair.shape[-2:]) != (model.config.image_size,) * 2:
        raise UserError(
            f"The test images are {tuple(pair.shape[-2:])} pixels; this model draws "
            f"{model.config.image_size}x{model.config.image_size}."
        )
    # image_batches does not shuffle two rows it was given in order: index_a comes first.
    return pair[0], pair[1]


# --- two models side by side ----------------------------------------------------------------

COMPARE_OPERATIONS = ("sample", "reconstruct", "interpolate")


def compare_column(
    model: nn.Module, operation: str, text_a: str, text_b: str, seed: int, decoding: Decoding
) -> str:
    """One model's column of a comparison: the same operation, input and seed as the
    other's. A model that cannot do it gets the reason in its column."""
    if operation not in COMPARE_OPERATIONS:
        raise UserError(f"Compare can {', '.join(COMPARE_OPERATIONS)}.")
    seed = checked_count(seed, "Seed", 0, 2**31 - 1)
    try:
        if operation == "sample":
            return "\n".join(sample_sentences(model, 5, seed, decoding))
        if operation == "reconstruct":
            result = reconstruct_sentence(model, text_a, 3, seed, decoding)
            lines = [f"mean      {result.from_mean}"]
            lines += [f"sample {i + 1}  {s}" for i, s in enumerate(result.from_samples)]
            return "\n".join([*lines, f"KL {result.kl:.2f} nats"])
        path = interpolate_sentences(model, text_a, text_b, 5, "lerp", decoding)
        return "\n".join(f"{t:.2f}  {s}" for t, s in zip(path.t, path.sentences, strict=True))
    except UserError as error:
        if str(error).startswith("This model is"):
            return f"({error})"
        raise


# --- diagnose -----------------------------------------------------------------------------


@dataclass
class CardView:
    """What a model's card measured, and the diagnose verdict on those numbers."""

    rows: list[tuple[str, str]]
    verdict: dict[str, Any] | None
    split: str | None
    generation: list[tuple[str, str]]


def committed_rate_of(model: nn.Module) -> float:
    """δ of the model's prior (0 for N(0, I)); a sequential text latent's depends on the
    sentence length, so its config's figure is only a guide there."""
    return float(getattr(model.config, "committed_rate", 0.0) or 0.0)


def card_view(model: nn.Module, source: str) -> CardView:
    """The card's numbers (NLL, KL, MI, AU, generation report) and the verdict that
    `vaehub diagnose` would give on them (`vaehub.evaluation.diagnose.verdict`, the same rule)."""
    from vaehub import hub
    from vaehub.evaluation.diagnose import verdict

    results = getattr(model, "evaluation_results", {}) or {}
    split = "test" if "test" in results else next(iter(results), None)
    metrics = results[split].get("metrics", {}) if split else {}
    labels = [
        ("nll", "NLL (nats per example)"),
        ("ppl", "perplexity"),
        ("bits_per_dim", "bits per dimension"),
        ("kl", "KL (nats)"),
        ("mi", "mutual information I_q"),
        ("active_units", "active units"),
        ("reconstruction", "reconstruction (nats)"),
        ("neg_elbo", "−ELBO (nats)"),
        ("num_examples", "examples"),
        ("iw_samples", "K of the IW-NLL"),
    ]
    rows = []
    for key, label in labels:
        if key in metrics and metrics[key] is not None:
            value = metrics[key]
            integer = key in ("active_units", "num_examples", "iw_samples")
            rows.append((label, str(int(value)) if integer else hub.fixed(value, 3)))
    judged = None
    if model_kind(model) in ("text_vae", "image_vae") and all(
        k in metrics for k in ("kl", "mi", "active_units")
    ):
        judged = verdict(metrics, committed_rate_of(model), None)
    return CardView(rows, judged, split, generation_rows(source))


def generation_rows(source: str) -> list[tuple[str, str]]:
    """The generation report of a model folder or Hub repository, as label/value rows."""
    import json

    from vaehub import hub
    from vaehub.models.checkpoints import CheckpointError, resolve_file

    try:
        path = resolve_file(source, hub.GENERATION_FILE, {})
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (CheckpointError, OSError, ValueError):
        return []
    rows = []
    for part in ("reconstruction", "samples", "interpolation"):
        for key, value in (report.get(part) or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            text = str(value) if isinstance(value, int) else hub.fixed(value, 3)
            rows.append((f"{part} {key.replace('_', ' ')}", text))
    return rows


def verdict_words(judged: dict[str, Any] | None) -> str:
    """The verdict in plain words, Markdown-safe."""
    if judged is None:
        return "No verdict: this model has no latent, or its card lacks KL, MI or active units."
    state = "**collapsed**" if judged["collapsed"] else "**in use**"
    why = judged["why"]
    return f"Verdict: {state}. {escape(why[0].upper() + why[1:])}"


@dataclass
class Diagnosis:
    """A `vaehub diagnose` run from the page: its report and the figures it drew."""

    report: dict[str, Any]
    figures: dict[str, str]


def run_diagnosis(
    model: nn.Module,
    name: str,
    sentences: Sequence[str] | None,
    output_dir: str,
    images: Any = None,
    iw_samples: int = 50,
    job: Job | None = None,
) -> Diagnosis:
    """`vaehub.evaluation.diagnose.diagnose` on a few examples typed in the page (text, one per
    line) or test images, without the gaps (hundreds of SVI steps each); figures written
    under `output_dir`."""
    from vaehub.data.batching import iterate_batches
    from vaehub.data.images import image_batches
    from vaehub.data.text import tokenize_corpus
    from vaehub.evaluation.diagnose import diagnose

    kind = require(model, "text_vae", "image_vae")
    if kind == "text_vae":
        lines = [line for line in (sentences or []) if line.strip()]
        if len(lines) < 2:
            raise UserError("Give at least two sentences, one per line, to diagnose on.")
        if len(lines) > MAX_SENTENCES:
            raise UserError(f"Give at most {MAX_SENTENCES} sentences ({len(lines)} given).")
        texts = [checked_sentence(line, f"line {i + 1}") for i, line in enumerate(lines)]
        import datasets

        tokens = tokenize_corpus(
            datasets.Dataset.from_dict({"text": texts}),
            model.tokenizer,
            model.config.max_sequence_length,
        )
        batches = list(iterate_batches(tokens, 16, model.config.pad_token_id))
    else:
        if images is None:
            raise UserError(
                "Diagnosing an image model needs its test images: start the explorer with "
                "--data (an MNIST or Omniglot folder)."
            )
        batches = list(image_batches(images.select(range(min(64, len(images)))), 32, seed=0))
    job = job or Job()
    with job.watching(model):
        report = diagnose(
            model,
            batches,
            output_dir,
            name,
            iw_samples=iw_samples,
            gap_examples=0,
            show_progress=True,
        )
    figures = {key: os.path.join(output_dir, file) for key, file in report["figures"].items()}
    return Diagnosis(report, figures)
