"""Which decoding a text VAE should use by default: the generation report
(`vaehub.evaluation.generation_report`) of one model under each candidate decoding, on the same
held-out sentences and latents.

    python benchmarks/decoding_defaults.py MODEL --data PTB_DIR [--baseline LM] \
        [--examples 100] [--samples 100] [--output benchmarks/results/decoding_defaults.json]

A default should end its sentences (samples ending with `</s>` near 1, mean length near the
corpus's), reconstruct (BLEU, token accuracy), stay varied (distinct-n) and fluent (the
samples' perplexity under the LSTM-LM), and move along an interpolation. Every candidate
keeps the entry points' length push and `<unk>` switch; only the strategy changes.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

CANDIDATES: dict[str, dict] = {
    "greedy": {"num_beams": 1, "no_repeat_ngram_size": 0},
    "greedy, no repeated trigram": {"num_beams": 1, "no_repeat_ngram_size": 3},
    "greedy, repetition penalty 1.2": {
        "num_beams": 1, "no_repeat_ngram_size": 0, "repetition_penalty": 1.2,
    },
    "beam 4": {"num_beams": 4, "no_repeat_ngram_size": 0},
    "beam 4, no repeated trigram": {"num_beams": 4, "no_repeat_ngram_size": 3},
    "sampling, top-p 0.9": {"do_sample": True, "top_p": 0.9, "no_repeat_ngram_size": 0},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", required=True, help="a PTB folder (its test split is used)")
    parser.add_argument("--baseline", default=None, help="an LSTM-LM for the samples' PPL")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/decoding_defaults.json")
    args = parser.parse_args()

    import vaehub  # noqa: F401  (registers the models with the Auto classes)
    from vaehub.data.sources import evaluation_sentences
    from vaehub.evaluation.generation_report import generation_report
    from vaehub.models.auto import load_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    model = load_model(args.model).float().eval()
    baseline = load_model(args.baseline).float().eval() if args.baseline else None
    sentences, _ = evaluation_sentences(args.data, "test", args.examples)
    results = {
        "model": args.model,
        "baseline": args.baseline,
        "examples": args.examples,
        "samples": args.samples,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg(),
        "candidates": {},
    }
    for name, decoding in CANDIDATES.items():
        start = time.perf_counter()
        report = generation_report(
            model, sentences["text"], num_samples=args.samples, seed=args.seed,
            baseline=baseline, decoding=decoding,
        )  # fmt: skip
        report["seconds"] = time.perf_counter() - start
        results["candidates"][name] = report
        numbers = {
            part: {k: round(v, 3) for k, v in report[part].items() if isinstance(v, float)}
            for part in ("reconstruction", "samples", "interpolation")
        }
        print(f"{name}: {json.dumps(numbers)}", flush=True)
    results["load_average_after"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1, ensure_ascii=False)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
