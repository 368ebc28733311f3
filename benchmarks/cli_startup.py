"""How fast the `vaehub` command starts: each command line run as a whole process, several
times, beside `import torch` alone (what any command that computes must pay).

    python benchmarks/cli_startup.py [--repeats 7]

Targets: `vaehub --help` and `vaehub <command> --help` at most 1.5 s, `import vaehub` at
most 2.5 s. `vaehub train --help` lists every `transformers.TrainingArguments` flag, so it
imports transformers' trainer and torch: it is timed, not held to the target. Writes
`benchmarks/results/cli_startup.json` with the machine's load before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VAEHUB = str(Path(sys.executable).with_name("vaehub"))
TARGET_S = {"vaehub --help": 1.5, "vaehub generate --help": 1.5, "import vaehub": 2.5}
COMMANDS = {
    "vaehub --help": [VAEHUB, "--help"],
    "vaehub generate --help": [VAEHUB, "generate", "--help"],
    "vaehub evaluate --help": [VAEHUB, "evaluate", "--help"],
    "vaehub train --help": [VAEHUB, "train", "--help"],
    "import vaehub": [sys.executable, "-c", "import vaehub"],
    "import torch": [sys.executable, "-c", "import torch"],
}


def timed(command: list[str], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - start)
    return seconds


def spread(seconds: list[float]) -> dict[str, float]:
    """Median, min and max of repeated timings, in seconds to the millisecond."""
    return {
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
    }


def write_record(name: str, repeats: int, load_before: float, results: dict, **extra: Any) -> None:
    """Write `results/NAME.json`: the timings with the repeats, cores and load around them."""
    record = {
        "repeats": repeats,
        "cpu_count": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "results": results,
        **extra,
    }
    output = HERE / "results" / f"{name}.json"
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = {}
    for name, command in COMMANDS.items():
        results[name] = {**spread(timed(command, args.repeats)), "target_s": TARGET_S.get(name)}
        print(f"{name:<26} median {results[name]['median_s']:.2f} s "
              f"(min {results[name]['min_s']:.2f}, max {results[name]['max_s']:.2f})")
    write_record("cli_startup", args.repeats, load_before, results)


if __name__ == "__main__":
    main()
