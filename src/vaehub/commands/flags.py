"""The flags several commands share, and the parser that spells every long flag both ways."""

from __future__ import annotations

import argparse
from typing import Any


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


DECODING_FLAGS = (
    "do_sample", "temperature", "top_k", "top_p", "num_beams", "max_new_tokens",
    "repetition_penalty", "no_repeat_ngram_size", "length_penalty",
)  # fmt: skip


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


def decoding_options(args: argparse.Namespace, model: Any) -> dict[str, Any]:
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


def corpus_options(args: argparse.Namespace) -> dict[str, Any]:
    """The data flags `vaehub evaluate` shares with `vaehub train` (`DataArguments`)."""
    names = ("text_column", "dataset_config_name", "cache_dir", "validation_split_percentage",
             "validation_split_seed")  # fmt: skip
    return {name: getattr(args, name) for name in names if hasattr(args, name)}
