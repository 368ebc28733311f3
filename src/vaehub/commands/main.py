"""The `vaehub` command and its subcommands: `demo`, `reproduce`, `train`, `evaluate`,
`diagnose`, `push`, `pull`, `generate`, `interpolate`, `reconstruct`, `card`, `release` and
`verify`.

`vaehub train` parses `ModelArguments`, `DataArguments` and `VAETrainingArguments` with
`HfArgumentParser`, so every `TrainingArguments` flag works (`--learning_rate`,
`--num_train_epochs`, `--bf16`, `--resume_from_checkpoint`, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from vaehub import hub
from vaehub.data.sources import (
    image_dataset_kind,
    load_images,
)
from vaehub.latent.refinement import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_MAX_GRAD_NORM,
    DEFAULT_MOMENTUM,
    REFINEMENT_DEFAULTS,
)
from vaehub.recipes.demo_recipes import DEFAULT_RECIPES, RECIPES
from vaehub.utils.allocator import keep_freed_memory


def train(argv: Sequence[str]) -> int:
    """`vaehub train`: train a text VAE or δ-VAE with any objective, save it and its
    evaluation (`vaehub.recipes.train.train_with_flags`)."""
    from vaehub.recipes.train import train_with_flags

    return train_with_flags(argv)


TABLE_ROWS = (
    ("nll", "NLL (nats/{unit})"),
    ("ppl", "PPL"),
    ("bits_per_dim", "bits/dim"),
    ("neg_elbo", "−ELBO"),
    ("reconstruction", "reconstruction"),
    ("kl", "KL"),
    ("mi", "MI"),
    ("active_units", "active units"),
    ("baseline_nll", "decoder-alone NLL"),
    ("delta_nll", "ΔNLL vs decoder alone"),
)


def evaluate(args: argparse.Namespace) -> int:
    """`vaehub evaluate`: the collapse metrics of a saved model on a corpus."""
    import torch

    from vaehub.data.sources import evaluation_data
    from vaehub.evaluation.metrics import evaluate_vae

    # Asked before measuring, and again with the results: a released or fuller record, or
    # one of other data, is never replaced silently.
    target = args.output or os.path.join(args.model_dir, f"{hub.EVAL_PREFIX}{args.split}.json")
    # A Hub id (no such path here) is recorded as given.
    local = args.data not in ("synthetic", "digits") and os.path.exists(args.data)
    data = os.path.abspath(args.data) if local else args.data
    hub.check_results_target(target, None, data, overwrite=args.overwrite)
    model = load_model(args.model_dir)
    _resolve_refinement(args, model)
    stats: dict[str, Any] = {}
    batches, unit, dataset, total = evaluation_data(
        model, args.data, args.split, args.batch_size, args.max_examples, args.seed, stats,
        **corpus_options(args),
    )  # fmt: skip
    torch.manual_seed(args.seed)
    results = evaluate_vae(
        model,
        batches,
        iw_samples=args.iw_samples or None,
        show_progress=not args.no_progress and sys.stderr.isatty(),
        total=total,
        refine_steps=args.refine_steps,
        refine_lr=args.refine_lr,
        refine_momentum=args.refine_momentum,
        refine_max_grad_norm=args.refine_max_grad_norm,
        baseline=load_model(args.baseline) if args.baseline else None,
    )
    refined = (
        f", posterior refined by {args.refine_steps} SVI steps of η = {args.refine_lr:g}, "
        f"momentum {args.refine_momentum:g}, gradients clipped at norm "
        f"{args.refine_max_grad_norm:g}"
        if args.refine_steps
        else ""
    )
    print(
        f"{args.model_dir} on {args.data} ({args.split}, {results['num_examples']} {unit}"
        f"{f', K={args.iw_samples}' if args.iw_samples else ''}{refined}):"
    )
    for key, label in TABLE_ROWS:
        if key in results:
            value = results[key]
            label = label.format(unit=unit[:-1])
            shown = str(round(value)) if key in hub.COUNTS else hub.fixed(value, 3)
            print(f"  {label:<22}{shown:>10}")
    extra = {"iw_samples": args.iw_samples or None, "data": data, **stats}
    hub.check_results_target(target, dataset, data, results, overwrite=args.overwrite)
    if args.generation:
        extra["generation"] = _generation(args, model)
    output = hub.write_results(
        args.model_dir, args.split, results, dataset, path=args.output, **extra
    )
    print(f"wrote {output}")
    return 0


def corpus_options(args: argparse.Namespace) -> dict[str, Any]:
    """The data flags `vaehub evaluate` shares with `vaehub train` (`DataArguments`)."""
    names = ("text_column", "dataset_config_name", "cache_dir", "validation_split_percentage",
             "validation_split_seed")  # fmt: skip
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def _resolve_refinement(args: argparse.Namespace, model: Any) -> None:
    """Refinement settings not given on the command line: the model's own (an SA-VAE is
    used with the refinement it trained with) unless --no_refine, else none."""
    own = model.inference_refinement if hasattr(model, "inference_refinement") else None
    if args.no_refine:
        if args.refine_steps:
            raise ValueError("--no_refine measures the bare encoder: drop --refine_steps.")
        own = None
    defaults = {"refine_steps": 0, **REFINEMENT_DEFAULTS}
    for key, default in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, own[key] if own else default)


def _generation(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """`--generation`: the generation report on the evaluated sentences, printed."""
    from vaehub.data.sources import evaluation_sentences
    from vaehub.evaluation.generation_report import generation_report

    if model.main_input_name != "input_ids" or not getattr(model, "has_latent", True):
        raise ValueError("--generation reports on a text VAE's decodings; this model is not one.")
    sentences, _ = evaluation_sentences(args.data, args.split, args.max_examples or 200)
    baseline = load_model(args.baseline) if args.baseline else None
    report = generation_report(model, sentences["text"], seed=args.seed, baseline=baseline)
    print("generation report (default decoding):")
    for part in ("reconstruction", "samples", "interpolation"):
        for key, value in report[part].items():
            if isinstance(value, (int, float)):
                print(f"  {part + ' ' + key:<34}{hub.fixed(value, 3):>10}")
    for sentence in report["shown"]["samples"]:
        print(f"  sample: {sentence}")
    return report


def diagnose(args: argparse.Namespace) -> int:
    """`vaehub diagnose`: did a model collapse, and why (a report with figures)."""
    from vaehub.data.sources import evaluation_data
    from vaehub.evaluation.diagnose import diagnose as run_diagnosis
    from vaehub.evaluation.gaps import GapSettings

    model = load_model(args.model)
    batches, unit, _, total = evaluation_data(
        model, args.data, args.split, args.batch_size, args.max_examples, args.seed
    )
    name = os.path.basename(os.path.normpath(args.model))
    output = args.output_dir or (
        os.path.join(args.model, "diagnosis") if os.path.isdir(args.model) else f"diagnosis-{name}"
    )
    report = run_diagnosis(
        model,
        list(batches),
        output,
        name,
        iw_samples=args.iw_samples,
        gap_examples=args.gap_examples,
        gap_settings=GapSettings(iw_samples=args.gap_iw_samples, flow=not args.no_flow),
        seed=args.seed,
        show_progress=not args.no_progress and sys.stderr.isatty(),
    )
    state = "collapsed" if report["verdict"]["collapsed"] else "not collapsed"
    print(f"{args.model} on {args.data} ({args.split}, {total} {unit}): {state}")
    print(f"  {report['verdict']['why']}")
    metrics = report["metrics"]
    rate = hub.fixed(report["committed_rate"], 3)
    print(
        f"  KL {hub.fixed(metrics['kl'], 3)} (committed rate {rate}),"
        f" MI {hub.fixed(metrics['mi'], 3)}, active units {metrics['active_units']}"
    )
    if report["gaps"] is not None:
        gaps = report["gaps"]
        print(
            f"  gaps on {gaps['examples']} {unit}: approximation "
            f"{hub.fixed(gaps['approximation_gap'], 3)}, amortisation "
            f"{hub.fixed(gaps['amortisation_gap'], 3)} nats"
        )
    print(f"wrote {os.path.join(output, 'report.md')} and diagnosis.json with its figures")
    return 0


def load_model(name_or_path: str) -> Any:
    """The vaehub model in a folder or Hub repository (`vaehub.models.auto.load_model`),
    imported when a command needs it, so that `vaehub --help` loads no model code."""
    from vaehub.models.auto import load_model as load

    return load(name_or_path)


def push(args: argparse.Namespace) -> int:
    """`vaehub push`: upload a model folder with its card."""
    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    url = hub.push_folder(
        args.model_dir,
        args.repo_id,
        private=args.private or None,
        revision=args.revision,
        commit_message=args.commit_message,
        card=not args.no_card,
    )
    print(f"pushed {args.model_dir} to {args.repo_id}: {url}")
    return 0


def pull(args: argparse.Namespace) -> int:
    """`vaehub pull`: download a model repository and check that it loads."""
    from transformers import AutoModel

    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    path = hub.pull(
        args.repo_id, revision=args.revision, local_dir=args.output_dir, force=args.force
    )
    model = AutoModel.from_pretrained(path)
    latent = getattr(model.config, "latent_size", None)
    print(
        f"pulled {args.repo_id}{f' ({args.revision})' if args.revision else ''} to {path}: "
        f"a {model.config.model_type} model, "
        + (f"latent size {latent}, " if latent is not None else "no latent, ")
        + f"{model.num_parameters():,} parameters."
    )
    return 0


def card(args: argparse.Namespace) -> int:
    """`vaehub card`: write a model folder's card without pushing."""
    model_card = hub.render_model_card(args.model_dir, repo_id=args.repo_id, split=args.split)
    output = args.output or os.path.join(args.model_dir, "README.md")
    from vaehub.utils.safe_io import write_text

    write_text(output, str(model_card))
    print(f"wrote {output}")
    return 0


def release(args: argparse.Namespace) -> int:
    """`vaehub release`: a trained model folder as a checkpoint with a checkable card."""
    from vaehub.recipes.release import release as release_checkpoint

    folder = release_checkpoint(
        args.model_dir, args.name, args.data, output_dir=args.output_dir,
        organization=args.organization, split=args.split, first=args.examples,
        seed=args.seed, iw_samples=args.iw_samples, batch_size=args.batch_size,
        dtype=args.dtype, baseline=args.baseline, about=_about(args.about),
    )  # fmt: skip
    print(f"wrote {folder}; push it with: vaehub push {folder} {args.organization}/{args.name}")
    return 0


def _about(value: str | None) -> str | None:
    """--about: Markdown text, or @FILE to read it from a file."""
    if value is None or not value.startswith("@"):
        return value
    with open(value[1:], encoding="utf-8") as handle:
        return handle.read()


def verify(args: argparse.Namespace) -> int:
    """`vaehub verify`: the card's verification slice measured again."""
    from vaehub.recipes.release import verify as verify_checkpoint
    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    checks = verify_checkpoint(args.model, data=args.data)
    print(f"{'metric':<16}{'card':>12}{'measured':>12}{'within':>10}")
    for check in checks:
        measured = "missing" if check.measured is None else hub.fixed(check.measured, 4)
        print(
            f"{check.metric:<16}{hub.fixed(check.card, 4):>12}{measured:>12}"
            f"{hub.fixed(check.tolerance, 4):>10}  {'ok' if check.ok else 'DIFFERS'}"
        )
    wrong = [check.metric for check in checks if not check.ok]
    if wrong:
        print(
            f"vaehub verify: the card of {args.model} does not match its weights: "
            f"{', '.join(wrong)} differ beyond tolerance.",
            file=sys.stderr,
        )
        return 1
    print(f"{args.model}: every number of the card's verification slice agrees.")
    return 0


def _load_model(args: argparse.Namespace) -> Any:
    """The vaehub model of a folder or Hub repository, for inference."""
    import torch

    from vaehub.utils import network

    network.set_hub_timeout(args.timeout)
    model = load_model(args.model).eval()
    if getattr(model, "tokenizer", False) is None:
        raise ValueError(f"{args.model} holds no tokenizer to write sentences with.")
    torch.manual_seed(args.seed)
    return model


def _is_image_model(model: Any) -> bool:
    from vaehub.models.auto import modality_of

    return modality_of(model) == "image"

DECODING_FLAGS = (
    "do_sample", "temperature", "top_k", "top_p", "num_beams", "max_new_tokens",
    "repetition_penalty", "no_repeat_ngram_size", "length_penalty",
)  # fmt: skip


def _decoding_options(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    """The decoding flags given, as `generate_sentences`/`reconstruct`/`interpolate` take
    them; the model's defaults fill in the rest."""
    options = {name: getattr(args, name) for name in DECODING_FLAGS}
    options = {name: value for name, value in options.items() if value is not None}
    if args.greedy_text:
        options.update(num_beams=1, no_repeat_ngram_size=0)
    if args.bad_words:
        ids = [model.tokenizer.convert_tokens_to_ids(w) for w in args.bad_words]
        unknown = [
            w
            for w, i in zip(args.bad_words, ids, strict=True)
            if i in (None, model.config.unk_token_id)
        ]
        if unknown:
            raise ValueError(f"--bad_words: {', '.join(unknown)} not in the model's vocabulary.")
        options["bad_words_ids"] = [[i] for i in ids]
    options["allow_unk"] = args.allow_unk
    return options


def generate(args: argparse.Namespace) -> int:
    """`vaehub generate`: samples from the prior, printed (text) or drawn as a grid (images)."""
    model = _load_model(args)
    if _is_image_model(model):
        from vaehub.models.image.modeling_delta_vae import save_image_grid

        images = model.generate(num_samples=args.num_samples, greedy=args.greedy)
        path = save_image_grid(images, args.output or "samples.png")
        print(f"wrote {args.num_samples} samples of {args.model} to {path}")
        return 0
    for sentence in model.generate_sentences(
        num_samples=args.num_samples, **_decoding_options(args, model)
    ):
        print(sentence)
    return 0


def interpolate(args: argparse.Namespace) -> int:
    """`vaehub interpolate`: decode the path between the posterior means of two inputs."""
    model = _load_model(args)
    if not getattr(model, "has_latent", True):
        raise ValueError(
            f"{args.model} is a {model.config.model_type} model, with no latent to interpolate in."
        )
    if _is_image_model(model):
        import torch

        from vaehub.data.images import image_batches
        from vaehub.models.image.modeling_delta_vae import save_image_grid

        if args.data is None:
            raise ValueError(
                "a δ-VAE interpolates between two images: give --data (digits or a folder of "
                "MNIST or Omniglot files) and two test-image indices."
            )
        kind = image_dataset_kind(args.data)
        images = load_images(kind, None if kind == "digits" else args.data, "test")
        indices = []
        for given in (args.a, args.b):
            if not given.isdigit() or int(given) >= len(images):
                raise ValueError(
                    f"{given!r} is not an image index: give two of 0..{len(images) - 1}."
                )
            indices.append(int(given))
        pair = next(image_batches(images.select(indices), 2, seed=args.seed))["pixel_values"]
        path_images = model.interpolate(
            pair[0], pair[1], args.steps, args.seed, args.greedy, method=args.method
        )
        row = torch.cat([pair[:1], path_images, pair[1:]])
        path = save_image_grid(row, args.output or "interpolation.png", columns=args.steps + 2)
        print(f"wrote image {indices[0]}, {args.steps} steps and image {indices[1]} to {path}")
        return 0
    path = model.interpolate(
        args.a, args.b, args.steps, method=args.method, refine=False if args.no_refine else None,
        **_decoding_options(args, model),
    )  # fmt: skip
    print(f"a     {path.inputs[0]}")
    for t, sentence in zip(path.t, path, strict=True):
        print(f"{t:.2f}  {sentence}")
    print(f"b     {path.inputs[1]}")
    return 0


def reconstruct(args: argparse.Namespace) -> int:
    """`vaehub reconstruct`: each sentence, then the decoding of its posterior."""
    model = _load_model(args)
    if model.main_input_name != "input_ids" or not getattr(model, "has_latent", True):
        raise ValueError(f"{args.model} is not a text VAE: it has no posterior to decode.")
    decoded = model.reconstruct(
        args.sentences, sample=args.sample, refine=False if args.no_refine else None,
        **_decoding_options(args, model),
    )  # fmt: skip
    for sentence, output in zip(args.sentences, decoded, strict=True):
        print(f"  {sentence}\n→ {output}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from vaehub.recipes.reproduce import TableSettings, reproduce_table

    extra = list(args.train_flags)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    for name in ("data_dir", "train_file", "validation_file", "test_file",
                 "synthetic_sentences", "max_train_examples", "max_eval_examples"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            extra = [f"--{name}", str(value), *extra]
    settings = TableSettings(
        dataset=args.dataset,
        output_dir=args.output_dir,
        rows=args.rows,
        seeds=tuple(args.seeds),
        max_steps=args.max_steps,
        iw_samples=args.iw_samples,
        anneal_fraction=args.anneal_fraction,
        budget=args.budget,
        extra_flags=tuple(extra),
    )
    if args.table_only:
        from vaehub.recipes.reproduce import render_markdown, write_table

        print(render_markdown(write_table(settings)))
        return 0
    reproduce_table(settings)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vaehub.recipes.demo import run_demo, show_flagship

    if args.flagship != "none":
        show_flagship(args.flagship, seed=args.seed)
    run_demo(
        output_dir=args.output_dir,
        num_sentences=args.num_sentences,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        iw_samples=args.iw_samples,
        recipes=tuple(args.recipes),
    )
    return 0


class FlagParser(argparse.ArgumentParser):
    """Every `--long_flag` is also `--long-flag`: one style, `vaehub train`'s and
    transformers' (underscores), with the other kept as an alias."""

    def add_argument(self, *names: Any, **kwargs: Any) -> argparse.Action:
        spelled: list[str] = []
        for name in names:
            forms = (
                ["--" + name[2:].replace("-", "_"), "--" + name[2:].replace("_", "-")]
                if isinstance(name, str) and name.startswith("--")
                else [name]
            )
            for form in forms:
                if form not in spelled:
                    spelled.append(form)
        return super().add_argument(*spelled, **kwargs)


def add_timeout_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait on the Hub server before giving up (default: $VAEHUB_HUB_TIMEOUT, "
        "else $HF_HUB_DOWNLOAD_TIMEOUT, else 10)",
    )


def add_decoding_flags(parser: argparse.ArgumentParser) -> None:
    # A text VAE's decoding, handed to transformers' generate (checked first).
    parser.add_argument(
        "--do_sample", action="store_true", default=None, help="text: sample the tokens"
    )
    parser.add_argument("--temperature", type=float, default=None, help="text: with --do_sample")
    parser.add_argument("--top_k", type=int, default=None, help="text: with --do_sample")
    parser.add_argument("--top_p", type=float, default=None, help="text: with --do_sample")
    parser.add_argument("--num_beams", type=int, default=None, help="text: beam search (default 4)")
    parser.add_argument(
        "--max_new_tokens",
        type=int,
        default=None,
        help="text: length limit (default: where the training sentences end, the model's "
        "generation_config.max_length)",
    )
    parser.add_argument("--repetition_penalty", type=float, default=None, help="text: > 1 avoids")
    parser.add_argument(
        "--no_repeat_ngram_size",
        type=int,
        default=None,
        help="text: forbid repeating an n-gram of this size (0: allow; default 3)",
    )
    parser.add_argument("--length_penalty", type=float, default=None, help="text: beam search")
    parser.add_argument(
        "--bad_words", nargs="+", default=None, metavar="WORD", help="text: words never decoded"
    )
    parser.add_argument(
        "--greedy_text",
        action="store_true",
        help="text: plain greedy decoding (one beam, repeats allowed) instead of the default",
    )
    parser.add_argument(
        "--allow_unk", action="store_true", help="text: let <unk> appear in the sentences"
    )
    parser.add_argument(
        "--greedy", action="store_true", help="δ-VAE: most likely pixels instead of samples"
    )
    parser.add_argument("--seed", type=int, default=0, help="for the prior draws and sampling")
    add_timeout_flag(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = FlagParser(
        prog="vaehub", description="Variational autoencoders whose latent code is used."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="posterior collapse (ELBO) and its cure (free bits) on the embedded corpus",
        description="Train a small text VAE on He et al.'s synthetic corpus, generated here, "
        "with the ELBO and with free bits (or the recipes given); compare, sample, plot, save.",
    )
    demo.add_argument("--output-dir", default="vaehub-demo", help="where to save the models")
    demo.add_argument(
        "--num-sentences",
        type=int,
        default=12000,
        help="synthetic sentences to generate (10%% held out)",
    )
    demo.add_argument(
        "--recipes",
        nargs="+",
        default=list(DEFAULT_RECIPES),
        choices=list(RECIPES),
        help="what to train, the reference first (default: %(default)s)",
    )
    demo.add_argument("--epochs", type=float, default=10, help="training epochs per recipe")
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument(
        "--iw-samples", type=int, default=100, help="importance samples K of the validation NLL"
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--flagship",
        default=os.path.join("model_cards", "ptb-lm-free-bits-aggressive"),
        help="the released text VAE whose sentences the demo shows first ('none' to skip)",
    )
    demo.set_defaults(run=_demo)

    reproducing = commands.add_parser(
        "reproduce",
        help="He et al.'s Table 1 or 2 in kind: every row trained, measured, resumable",
        description="Train and measure every row of the text table (LSTM-LM, VAE, anneal, "
        "β-VAE, free bits, SA-VAE, aggressive, δ-VAE, IAF and ours) or the image table "
        "(PixelCNN, VAE, anneal, β 0.8, SA-VAE, aggressive, δ-VAEs) with one budget; rows "
        "already finished are kept. Writes table.json, table.md and collapse.png.",
    )
    reproducing.add_argument(
        "--dataset", required=True,
        help="text: synthetic, ptb or files; images: mnist, omniglot or digits",
    )  # fmt: skip
    reproducing.add_argument("--output-dir", default="vaehub-reproduce")
    reproducing.add_argument("--rows", nargs="+", default=None, help="default: every row")
    reproducing.add_argument("--seeds", nargs="+", type=int, default=[0])
    reproducing.add_argument("--max-steps", type=int, default=2000, help="updates per row")
    reproducing.add_argument("--iw-samples", type=int, default=100, help="K of the IW-NLL")
    reproducing.add_argument(
        "--anneal-fraction", type=float, default=0.3,
        help="annealed rows reach β = 1 after this fraction of the updates",
    )  # fmt: skip
    reproducing.add_argument(
        "--table-only", action="store_true",
        help="train nothing: write the table from the rows and seeds already finished",
    )  # fmt: skip
    reproducing.add_argument(
        "--budget", choices=("cpu", "paper"), default="cpu",
        help="cpu: aggressive's MI checked every 50 updates and SA-VAE with K = 5, so that "
        "PTB's and the image tables fit a few CPU hours; paper: He et al.'s per-epoch check "
        "and Kim et al.'s K = 20 (for a GPU)",
    )  # fmt: skip
    for flag, what in (
        ("--data-dir", "folder of ptb.*.txt, MNIST's IDX files or Omniglot's npz files"),
        ("--train-file", "one sentence per line (--dataset files)"),
        ("--validation-file", "one sentence per line (--dataset files)"),
        ("--test-file", "one sentence per line (--dataset files)"),
        ("--synthetic-sentences", "size of the synthetic corpus"),
        ("--max-train-examples", "train on the first N examples only"),
        ("--max-eval-examples", "evaluate on the first N examples only"),
    ):
        reproducing.add_argument(flag, default=None, help=what)
    reproducing.add_argument(
        "train_flags", nargs=argparse.REMAINDER,
        help="after --: `vaehub train` flags given to every row (--bf16 True, ...)",
    )  # fmt: skip
    reproducing.set_defaults(run=_reproduce)

    commands.add_parser(
        "train",
        help="train a text VAE, an image δ-VAE or either's decoder alone (see `vaehub train "
        "--help`)",
        add_help=False,
        description="Every TrainingArguments flag works, plus the model, data and objective flags.",
    ).set_defaults(run=None)

    evaluation = commands.add_parser(
        "evaluate",
        help="IW-NLL, PPL, KL, MI and active units of a saved model",
        description="Evaluate a saved text model on a corpus, or an image model on an image "
        "set; prints a table and writes JSON. A model without a latent (text_lm, pixelcnn) "
        "gets its exact NLL.",
    )
    evaluation.add_argument("model_dir", help="a folder saved by vaehub")
    evaluation.add_argument(
        "--data",
        "--dataset_name",
        dest="data",
        required=True,
        help="a PTB folder (with --split), 'synthetic' (He et al.'s corpus, splits train and "
        "validation), a txt (one sentence per line), csv, json, jsonl or parquet file, a "
        "dataset folder, a save_to_disk folder or a dataset id on the Hub (with --split); "
        "for a δ-VAE, 'digits' or an MNIST or Omniglot folder",
    )
    evaluation.add_argument(
        "--text_column", default="text", help="the column holding the text (csv, json, ...)"
    )
    evaluation.add_argument(
        "--dataset_config_name", default=None, help="the configuration of a Hub dataset"
    )
    evaluation.add_argument("--cache_dir", default=None, help="datasets' cache folder")
    evaluation.add_argument(
        "--validation_split_percentage",
        type=float,
        default=5,
        help="a dataset without a validation split: the percentage of train cut as one, "
        "as vaehub train cuts it",
    )
    evaluation.add_argument(
        "--validation_split_seed", type=int, default=0, help="the seed of that cut"
    )
    evaluation.add_argument("--split", default="test", help="train, validation or test")
    evaluation.add_argument(
        "--iw-samples", type=int, default=500, help="K of the importance-weighted NLL; 0 skips it"
    )
    evaluation.add_argument("--batch-size", type=int, default=64)
    evaluation.add_argument(
        "--refine_steps",
        type=int,
        default=None,
        help="SVI steps refining each posterior from the encoder's before measuring "
        "(Kim et al.): how much of the gap is the encoder's. Default: a model trained with "
        "SVI refinement (SA-VAE) is measured with its own; others with none",
    )
    evaluation.add_argument(
        "--refine_lr",
        type=float,
        default=None,
        help=f"step size η of those SVI steps, per example (default: the model's own, else "
        f"{DEFAULT_LEARNING_RATE:g}, Kim et al.'s)",
    )
    evaluation.add_argument(
        "--refine_momentum",
        type=float,
        default=None,
        help=f"momentum of those SVI steps (default: the model's own, else {DEFAULT_MOMENTUM:g}, "
        "Kim et al.'s)",
    )
    evaluation.add_argument(
        "--refine_max_grad_norm",
        type=float,
        default=None,
        help="norm at which those SVI steps' gradients are clipped (default: the model's own, "
        f"else {DEFAULT_MAX_GRAD_NORM:g}, Kim et al.'s)",
    )
    evaluation.add_argument(
        "--no_refine",
        action="store_true",
        help="measure the bare encoder's posterior, even for a model trained with SVI refinement",
    )
    evaluation.add_argument(
        "--generation",
        action="store_true",
        help="text VAE: also the generation report (reconstruction BLEU and token accuracy "
        "on the first 200 sentences or --max_examples, prior samples, interpolations), saved "
        "in the results under 'generation'",
    )
    evaluation.add_argument(
        "--max_examples",
        "--max_sentences",
        type=int,
        default=None,
        help="evaluate the first N sentences or images only",
    )
    evaluation.add_argument(
        "--baseline",
        default=None,
        help="a text_lm or pixelcnn model (the decoder trained alone): its exact NLL on the "
        "same examples is printed and saved beside the IW-NLL, with their difference",
    )
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown in a terminal)"
    )
    evaluation.add_argument(
        "--output", default=None, help="JSON path (default MODEL_DIR/eval_<split>.json)"
    )
    evaluation.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a released record, or one measured on other data (never a fuller one)",
    )
    evaluation.set_defaults(run=evaluate)

    diagnosis = commands.add_parser(
        "diagnose",
        help="did a model collapse, and why: a report with KL per dimension, AU, MI, gaps",
        description="Measure a saved model (a folder or a Hub id) on data and write a "
        "Markdown report, its figures and the numbers as JSON: KL per dimension, active "
        "units, MI, KL against the committed rate, the approximation and amortisation "
        "gaps, and for 2-d latents the posterior figures.",
    )
    diagnosis.add_argument("model", help="a folder saved by vaehub, or a Hub repository id")
    diagnosis.add_argument(
        "--data",
        required=True,
        help="as for evaluate: a PTB folder, a one-sentence-per-line file, 'digits' or an "
        "MNIST or Omniglot folder",
    )
    diagnosis.add_argument("--split", default="test")
    diagnosis.add_argument("--max_examples", type=int, default=1000, help="examples measured")
    diagnosis.add_argument(
        "--gap_examples",
        type=int,
        default=32,
        help="examples the gaps are measured on (each costs hundreds of SVI steps); 0 skips",
    )
    diagnosis.add_argument("--iw-samples", type=int, default=500, help="K of the IW-NLL; 0 skips")
    diagnosis.add_argument(
        "--gap_iw_samples", type=int, default=1000, help="K of log p(x) in the gaps"
    )
    diagnosis.add_argument("--no_flow", action="store_true", help="skip the optimal flow fit")
    diagnosis.add_argument("--batch-size", type=int, default=64)
    diagnosis.add_argument("--seed", type=int, default=0)
    diagnosis.add_argument("--output_dir", default=None, help="default MODEL/diagnosis")
    diagnosis.add_argument("--no-progress", action="store_true")
    diagnosis.set_defaults(run=diagnose)

    pushing = commands.add_parser(
        "push",
        help="upload a model folder and its card to the Hub",
        description="Upload a saved model folder (weights, config, tokenizer, generation "
        "config, results) with a model card rendered from its evaluation results. "
        "The local folder is only read.",
    )
    pushing.add_argument("model_dir")
    pushing.add_argument("repo_id", help="org/name")
    pushing.add_argument("--private", action="store_true")
    pushing.add_argument("--revision", default=None, help="branch to push to (created)")
    pushing.add_argument("--commit-message", default=None)
    pushing.add_argument("--no-card", action="store_true", help="push without a model card")
    add_timeout_flag(pushing)
    pushing.set_defaults(run=push)

    pulling = commands.add_parser(
        "pull",
        help="download a model from the Hub and check it",
        description="Download a vaehub model repository.",
    )
    pulling.add_argument("repo_id", help="org/name")
    pulling.add_argument("--revision", default=None)
    pulling.add_argument(
        "--output-dir", default=None, help="a folder to place the files in (default: the Hub cache)"
    )
    pulling.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty --output-dir as a whole (refused without it)",
    )
    add_timeout_flag(pulling)
    pulling.set_defaults(run=pull)

    generating = commands.add_parser(
        "generate",
        help="sample from a model's prior: sentences, or a grid of images",
        description="Decode latents drawn from the prior of a saved model (a folder or Hub "
        "id): a text VAE prints one sentence per line, a δ-VAE writes a PNG grid.",
    )
    generating.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    generating.add_argument("--num_samples", type=int, default=8)
    generating.add_argument("--output", default=None, help="δ-VAE: PNG path (samples.png)")
    add_decoding_flags(generating)
    generating.set_defaults(run=generate)

    interpolating = commands.add_parser(
        "interpolate",
        help="decode the path between two sentences (or two images)",
        description="Decode z(t) = (1 − t)·z_a + t·z_b between the posterior means of two "
        "sentences (text VAE) or of two test images given by index with --data (δ-VAE, "
        "written as a PNG row).",
    )
    interpolating.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    interpolating.add_argument("a", help="the first sentence (δ-VAE: a test-image index)")
    interpolating.add_argument("b", help="the second sentence (δ-VAE: a test-image index)")
    interpolating.add_argument("--steps", type=int, default=5, help="points on the path, >= 2")
    interpolating.add_argument("--data", default=None, help="δ-VAE: digits, or a folder")
    interpolating.add_argument(
        "--method",
        default="lerp",
        choices=("lerp", "slerp"),
        help="the path: straight (lerp) or along the great circle (slerp)",
    )
    interpolating.add_argument(
        "--no_refine",
        action="store_true",
        help="text: the bare encoder's posterior, even for a model trained with SVI refinement",
    )
    interpolating.add_argument("--output", default=None, help="δ-VAE: PNG path (interpolation.png)")
    add_decoding_flags(interpolating)
    interpolating.set_defaults(run=interpolate)

    reconstructing = commands.add_parser(
        "reconstruct",
        help="encode sentences and decode them again",
        description="Print each sentence and the decoding of its posterior mean (or a "
        "sample, with --sample) under a text VAE; a model trained with SVI refinement "
        "(SA-VAE) refines its posterior first unless --no_refine.",
    )
    reconstructing.add_argument("model", help="a folder saved by vaehub, or a Hub id")
    reconstructing.add_argument("sentences", nargs="+", help="one or more sentences")
    reconstructing.add_argument(
        "--sample", action="store_true", help="decode a sample of q(z|x) instead of its mean"
    )
    reconstructing.add_argument(
        "--no_refine", action="store_true", help="the bare encoder's posterior"
    )
    add_decoding_flags(reconstructing)
    reconstructing.set_defaults(run=reconstruct)

    carding = commands.add_parser(
        "card",
        help="write a model folder's card (README.md)",
        description="Render the model card from the folder's "
        "config, evaluation results and training "
        "summary, without pushing.",
    )
    carding.add_argument("model_dir")
    carding.add_argument("--repo-id", default=None, help="the Hub name the usage snippet loads")
    carding.add_argument("--split", default=None, help="which evaluation to report")
    carding.add_argument("--output", default=None, help="default MODEL_DIR/README.md")
    carding.set_defaults(run=card)

    releasing = commands.add_parser(
        "release",
        help="make a trained model folder a checkpoint with a card anyone can check",
        description="Write OUTPUT_DIR/NAME, ready for `vaehub push`: the model (optionally "
        "stored in float16 or bfloat16), its results, a verification slice (the first N "
        "examples of the card's split) measured on the stored weights, and the card.",
    )
    releasing.add_argument("model_dir", help="a folder written by vaehub train")
    releasing.add_argument("--name", required=True, help="the checkpoint's name on the Hub")
    releasing.add_argument(
        "--data", required=True,
        help="the slice's dataset: synthetic, digits, or a PTB, MNIST or Omniglot folder or "
        "a sentence file",
    )  # fmt: skip
    releasing.add_argument("--output-dir", default="model_cards")
    releasing.add_argument("--organization", default="vaehub")
    releasing.add_argument("--split", default=None, help="default: test where there is one")
    releasing.add_argument("--examples", type=int, default=200, help="size of the slice")
    releasing.add_argument("--iw-samples", type=int, default=100, help="K on the slice")
    releasing.add_argument("--batch-size", type=int, default=64)
    releasing.add_argument("--seed", type=int, default=0)
    releasing.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    releasing.add_argument(
        "--baseline",
        default=None,
        help="text VAE: an LSTM-LM folder or Hub id under which the generation report "
        "measures the prior samples' perplexity",
    )
    releasing.add_argument(
        "--about",
        default=None,
        help="Markdown opening the card: what the checkpoint is for, its recipe, the command "
        "that trained it (@FILE reads it from a file)",
    )
    releasing.set_defaults(run=release)

    verifying = commands.add_parser(
        "verify",
        help="measure a checkpoint's verification slice again and compare with its card",
        description="Read the card of a folder or Hub repository, measure the verification "
        "slice it names on the weights beside it, and compare each number within its "
        "tolerance; exits 1 when any differs.",
    )
    verifying.add_argument("model", help="a checkpoint folder or a Hub id")
    verifying.add_argument(
        "--data", default=None, help="where the slice's dataset lies (not for synthetic, digits)"
    )
    add_timeout_flag(verifying)
    verifying.set_defaults(run=verify)

    # Listed for --help only: `main` hands `vaehub app ...` to vaehub.app.launch unparsed.
    commands.add_parser(
        "app", add_help=False, help="open the latent explorer (a Gradio page; vaehub[app])"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    keep_freed_memory()
    try:
        if command == "train":
            return train(argv[1:])
        if command == "app":  # imported only here: the core commands never need gradio
            from vaehub.app.launch import main as app_main

            return app_main(argv[1:])
        args = build_parser().parse_args(argv)
        return args.run(args)
    except SystemExit:  # --help and argparse's own errors: nothing more to load
        raise
    except (ValueError, OSError, hub.HubError) as error:
        print(f"vaehub {command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
