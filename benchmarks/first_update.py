"""Launch → first training update: `vaehub train` against a plain PyTorch script, on PTB.

    python benchmarks/first_update.py [--repeats 3] [--data-dir ../shared/data/ptb]

Both are started as whole processes and timed until they report their first optimiser
update, then stopped: `vaehub train` (PTB preset, He et al.'s SGD, batch 32) by the Trainer's
first logged loss at `--logging_steps 1`; the reference, a script that imports torch alone,
reads PTB's training sentences, builds the vocabulary, encodes the corpus and takes one SGD
step of the same model (`plain_reference.PlainTextVAE`), by a line it prints after
`optimizer.step()`. Target: vaehub within 1.5× of the reference. Writes
`benchmarks/results/first_update.json` with the machine's load before and after.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli_startup import spread, write_record  # run as a script: benchmarks/ is on sys.path
from shared_data import default_data_dir

HERE = Path(__file__).resolve().parent
VAEHUB = str(Path(sys.executable).with_name("vaehub"))
TARGET_RATIO = 1.5
FIRST_UPDATE = "first update"


def plain_run(data_dir: str, sizes: str) -> None:
    """The reference: what a plain PyTorch script does before its first update."""
    import types

    import torch
    from plain_reference import PlainTextVAE

    with open(os.path.join(data_dir, "ptb.train.txt"), encoding="utf-8") as handle:
        sentences = [line.split() for line in handle if line.strip()]
    counts = collections.Counter(word for sentence in sentences for word in sentence)
    vocabulary = ["<pad>", "<unk>", "<s>", "</s>", *(word for word, _ in counts.most_common())]
    index = {word: i for i, word in enumerate(vocabulary)}
    corpus = [[2, *(index.get(w, 1) for w in sentence), 3] for sentence in sentences]
    config = types.SimpleNamespace(vocab_size=len(vocabulary), **json.loads(sizes))
    torch.manual_seed(0)
    model = PlainTextVAE(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    batch = corpus[:32]
    width = max(map(len, batch))
    input_ids = torch.tensor([row + [0] * (width - len(row)) for row in batch])
    attention_mask = (input_ids != 0).long()
    loss = model(input_ids, attention_mask)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    print(f"{FIRST_UPDATE}: loss {loss.item():.1f}", flush=True)


def until_first_update(command: list[str], marker: str) -> float:
    """Seconds from starting `command` to the first line of its output holding `marker`."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    seen = []
    try:
        for line in process.stdout:
            if marker in line:
                return time.perf_counter() - start
            seen.append(line)
        raise RuntimeError(f"{command[0]} ended before its first update:\n{''.join(seen[-20:])}")
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument(
        "--plain-run", nargs=2, metavar=("DATA_DIR", "SIZES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.plain_run:
        plain_run(*args.plain_run)
        return
    if not (args.data_dir / "ptb.train.txt").is_file():
        sys.exit(f"no PTB at {args.data_dir}: give --data-dir (a folder with ptb.train.txt).")
    from vaehub.models.text.configuration_text_vae import TEXT_PRESETS, TextVAEConfig

    config = TextVAEConfig.from_preset("ptb")
    sizes = {
        key: getattr(config, key)
        for key in (*TEXT_PRESETS["ptb"], "decoder_embedding_dropout", "decoder_output_dropout")
        if key != "vocab_size"
    }
    load_before = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {"vaehub train": [], "plain PyTorch": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as output_dir:
            seconds["vaehub train"].append(until_first_update(
                [VAEHUB, "train", "--model_type", "text_vae", "--dataset", "ptb",
                 "--data_dir", str(args.data_dir), "--preset", "ptb", "--paper_training",
                 "--max_steps", "50", "--logging_steps", "1", "--save_strategy", "no",
                 "--report_to", "none", "--disable_tqdm", "True",
                 "--output_dir", output_dir],
                "'loss'",
            ))  # fmt: skip
        seconds["plain PyTorch"].append(until_first_update(
            [sys.executable, __file__, "--plain-run", str(args.data_dir), json.dumps(sizes)],
            FIRST_UPDATE,
        ))  # fmt: skip
    results = {name: spread(times) for name, times in seconds.items()}
    ratio = results["vaehub train"]["median_s"] / results["plain PyTorch"]["median_s"]
    for name, result in results.items():
        print(f"{name:<14} launch → first update: median {result['median_s']:.2f} s "
              f"(min {result['min_s']:.2f}, max {result['max_s']:.2f})")  # fmt: skip
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"{verdict}: vaehub takes {ratio:.2f}× the reference's time (target ≤ {TARGET_RATIO}×)")
    write_record(
        "first_update", args.repeats, load_before, results,
        ratio=round(ratio, 3), target_ratio=TARGET_RATIO,
    )  # fmt: skip


if __name__ == "__main__":
    main()
