"""One PTB epoch of `vaehub train --preset ptb --paper_training`, timed as a user runs it.

Runs the command itself (elbo, batch 32, SGD lr 1.0, length-bucketed batches, one
validation pass at the epoch's end) once in float32 and once with `--bf16 True`, each in
a fresh process, and writes one record per precision to `--json` as each finishes:

- `train_runtime_seconds`: the Trainer's own clock over the epoch (and its validation
  pass), from the saved model's `training.json`;
- `wall_seconds`: the whole command, with data loading, tokenizer, the final validation
  and test evaluation and the save;
- `updates_per_second`, the validation −ELBO after the epoch, and the load average
  before and after, since a busy machine slows an LSTM step many-fold.

    python benchmarks/time_ptb_epoch.py                     # float32 and bf16, ~8 min
    python benchmarks/time_ptb_epoch.py --precisions bf16 --json out.json
    python benchmarks/time_ptb_epoch.py --default-malloc    # records "fp32+default-malloc", ...

`vaehub` raises glibc's mmap and trim thresholds when it starts (`vaehub.utils.allocator`), so
each step's large blocks are reused from the heap instead of being mapped afresh and
faulted in page by page; `--default-malloc` sets `VAEHUB_KEEP_FREED_MEMORY=0` to time the
command with glibc's defaults, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shared_data import default_data_dir

from vaehub.training.arguments import cpu_supports_bf16

RESULTS = Path(__file__).parent / "results" / "ptb_epoch.json"
GLIBC_DEFAULTS = {"VAEHUB_KEEP_FREED_MEMORY": "0"}


def time_epoch(precision: str, data_dir: Path, threads: int, environment: dict) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            str(Path(sys.executable).parent / "vaehub"),
            "train",
            "--dataset", "ptb",
            "--data_dir", str(data_dir),
            "--preset", "ptb",
            "--paper_training",
            "--num_train_epochs", "1",
            "--save_strategy", "no",
            "--disable_tqdm", "True",
        ]  # fmt: skip
        if precision == "bf16":
            command += ["--bf16", "True"]
        shown = " ".join(command[1:])  # without the temporary output folder
        command += ["--output_dir", folder]
        load_before = os.getloadavg()
        start = time.perf_counter()
        subprocess.run(
            command, check=True, env=os.environ | {"OMP_NUM_THREADS": str(threads)} | environment
        )
        wall = time.perf_counter() - start
        load_after = os.getloadavg()
        training = json.loads(Path(folder, "training.json").read_text())
        validation = json.loads(Path(folder, "eval_validation.json").read_text())
    return {
        "command": shown,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "threads": threads,
        "environment": environment,
        "train_runtime_seconds": training["train_runtime_seconds"],
        "wall_seconds": wall,
        "updates": training["global_step"],
        "updates_per_second": training["global_step"] / training["train_runtime_seconds"],
        "validation_neg_elbo": validation["metrics"]["neg_elbo"],
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--precisions", nargs="+", choices=("fp32", "bf16"), default=None,
        help="default: fp32, and bf16 where the CPU has bfloat16 instructions",
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument(
        "--default-malloc", action="store_true", help="keep glibc's malloc thresholds"
    )
    args = parser.parse_args(argv)
    bf16 = cpu_supports_bf16()
    if args.precisions is None:
        args.precisions = ["fp32", "bf16"] if bf16 else ["fp32"]
        if not bf16:
            print("bf16 left out: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX)")
    elif "bf16" in args.precisions and not bf16:
        parser.error("--precisions bf16: this CPU has no bfloat16 instructions (AVX512-BF16, AMX)")
    records = json.loads(args.json.read_text()) if args.json.is_file() else {}
    environment = GLIBC_DEFAULTS if args.default_malloc else {}
    for precision in args.precisions:
        name = precision + ("+default-malloc" if args.default_malloc else "")
        records[name] = time_epoch(precision, args.data_dir, args.threads, environment)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=1))
        record = records[name]
        print(
            f"{name}: {record['train_runtime_seconds']:.0f} s for {record['updates']} "
            f"updates ({record['updates_per_second']:.2f}/s), whole command "
            f"{record['wall_seconds']:.0f} s, validation -ELBO "
            f"{record['validation_neg_elbo']:.2f}, load {record['load_average_before'][0]:.2f}"
            f" -> {record['load_average_after'][0]:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
