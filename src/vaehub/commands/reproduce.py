"""`vaehub reproduce`: a paper's table, every row trained and measured with one budget."""

from __future__ import annotations

import argparse

# The data flags handed to every row's `vaehub train` as given.
DATA_FLAGS = (
    "data_dir", "train_file", "validation_file", "test_file", "dataset_name",
    "dataset_config_name", "text_column", "validation_split_percentage", "cache_dir",
    "synthetic_sentences", "max_train_examples", "max_eval_examples",
)  # fmt: skip


def reproduce(args: argparse.Namespace) -> int:
    from vaehub.recipes.reproduce import TableSettings, reproduce_table

    extra = list(args.train_flags)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    for name in DATA_FLAGS:
        value = getattr(args, name)
        if value is not None:
            extra = [f"--{name}", str(value), *extra]
    dataset = args.dataset or ("files" if args.dataset_name or args.train_file else None)
    if dataset is None:
        raise ValueError(
            "give --dataset (synthetic, ptb, files, mnist, omniglot or digits), or a corpus "
            "with --dataset_name or --train_file."
        )
    if args.dataset_name and dataset != "files":
        raise ValueError(
            f"--dataset {dataset} and --dataset_name {args.dataset_name} name two corpora: "
            "drop --dataset (or give --dataset files)."
        )
    settings = TableSettings(
        dataset=dataset,
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


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Declare `vaehub reproduce` and its flags."""
    reproducing = commands.add_parser(
        "reproduce",
        help="He et al.'s Table 1 or 2 in kind: every row trained, measured, resumable",
        description="Train and measure every row of the text table (LSTM-LM, VAE, anneal, "
        "β-VAE, free bits, SA-VAE, aggressive, δ-VAE, IAF and ours) or the image table "
        "(PixelCNN, VAE, anneal, β 0.8, SA-VAE, aggressive, δ-VAEs) with one budget; rows "
        "already finished are kept. Writes table.json, table.md and collapse.png.",
    )
    reproducing.add_argument(
        "--dataset", default=None,
        help="text: synthetic, ptb or files (the default with --dataset_name or --train_file); "
        "images: mnist, omniglot or digits",
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
        ("--dataset-name", "a dataset id on the Hub, a local dataset folder or a save_to_disk "
         "folder, as for vaehub train"),
        ("--dataset-config-name", "the configuration of --dataset_name, if it has several"),
        ("--text-column", "the column holding the text (default: text)"),
        ("--validation-split-percentage", "a corpus without a validation split: the "
         "percentage of train cut as one (default 5)"),
        ("--cache-dir", "datasets' cache folder"),
        ("--synthetic-sentences", "size of the synthetic corpus"),
        ("--max-train-examples", "train on the first N examples only"),
        ("--max-eval-examples", "evaluate on the first N examples only"),
    ):
        reproducing.add_argument(flag, default=None, help=what)
    reproducing.add_argument(
        "train_flags", nargs=argparse.REMAINDER,
        help="after --: `vaehub train` flags given to every row (--bf16 True, ...)",
    )  # fmt: skip
    reproducing.set_defaults(run=reproduce)
