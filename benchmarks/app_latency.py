"""How fast the latent explorer answers on this CPU, with the flagship loaded.

Times the two requests the explorer promises to answer in under a second on a CPU
(issue 32): sampling five sentences from the prior, and reconstructing one sentence
(its posterior, the KL per dimension, the decoding of the mean; no posterior samples).
Each is the tab's own function in `vaehub.app.explore`, with the default decoding (4
beams, no repeated trigram) and with greedy decoding, called on the model as the app
holds it (loaded once, in eval mode, under `torch.no_grad`), and then as a browser asks
for them: through the served page's queue over HTTP (`gradio_client`, on loopback), which
adds the server's own work to the model's. The first call of each
(oneDNN's kernels are built on it) is timed apart from the repeats; the load average is
recorded beside the figures, since other work on the machine slows every one of them.

    python benchmarks/app_latency.py                       # 10 repeats, flagship of model_cards/
    python benchmarks/app_latency.py --repeats 30 --model model_cards/ptb-vae-elbo
    python benchmarks/app_latency.py --output benchmarks/results/app_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 1.0
SENTENCE = "the company said it expects higher sales next year"


def timed(work: Callable[[], object], repeats: int) -> dict[str, float]:
    """Seconds of the first call and the median, 90th percentile and worst of `repeats`."""
    start = time.perf_counter()
    work()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "first_s": first,
        "median_s": statistics.median(times),
        "p90_s": times[min(len(times) - 1, round(0.9 * (len(times) - 1)))],
        "max_s": times[-1],
        "repeats": repeats,
    }


def through_server(store, name: str, repeats: int) -> dict[str, dict[str, float]]:
    """The same two requests (default decoding) sent to the served page over HTTP."""
    from gradio_client import Client

    from vaehub.app.ui import build_app, launch

    app = build_app(store)
    url = launch(app, port=None, block=False)
    try:
        client = Client(url, verbose=False)
        # The decoding controls as the page sends them: strategy, beams, temperature,
        # top-k, top-p, <unk> allowed, max new tokens (0: the model's own).
        decoding = ("default", 4, 1.0, 0, 1.0, False, 0)
        return {
            "server_sample_5_default": timed(
                lambda: client.predict(name, 5, 0, *decoding, api_name="/on_sample"), repeats
            ),
            "server_reconstruct_1_default": timed(
                lambda: client.predict(name, SENTENCE, 0, 0, *decoding, api_name="/on_reconstruct"),
                repeats,
            ),
        }
    finally:
        app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "model_cards/ptb-lm-free-bits-aggressive"))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--output", default=str(ROOT / "benchmarks/results/app_latency.json"), help="JSON path"
    )
    parser.add_argument(
        "--no-server", action="store_true", help="skip the requests through the served page"
    )
    args = parser.parse_args(argv)

    from vaehub.app import explore
    from vaehub.app.models import ModelStore, display_name

    store = ModelStore([args.model])
    name = display_name(args.model)
    start = time.perf_counter()
    store.load(name)
    load_s = time.perf_counter() - start
    load_before = os.getloadavg()[0]
    results = {}
    for label, decoding in (
        ("default", explore.Decoding()),
        ("greedy", explore.Decoding("greedy")),
    ):
        with store.use(name) as model:
            results[f"sample_5_{label}"] = timed(
                lambda m=model, d=decoding: explore.sample_sentences(m, 5, 0, d), args.repeats
            )
            results[f"reconstruct_1_{label}"] = timed(
                lambda m=model, d=decoding: explore.reconstruct_sentence(m, SENTENCE, 0, 0, d),
                args.repeats,
            )
    if not args.no_server:
        results.update(through_server(store, name, args.repeats))
    record = {
        "model": name,
        "target_s": TARGET_SECONDS,
        "load_s": load_s,
        "timings": results,
        "within_target": {k: v["median_s"] < TARGET_SECONDS for k, v in results.items()},
        "machine": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0],
        },
        "sentence": SENTENCE,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    print(
        f"{name} (loaded in {load_s:.2f} s), {args.repeats} repeats, "
        f"load average {load_before:.2f} → {record['machine']['load_average_after']:.2f}"
    )
    print(f"{'request':<30}{'first':>8}{'median':>8}{'p90':>8}{'max':>8}  < {TARGET_SECONDS:g} s")
    for key, value in results.items():
        print(
            f"{key:<30}{value['first_s']:>8.3f}{value['median_s']:>8.3f}{value['p90_s']:>8.3f}"
            f"{value['max_s']:>8.3f}  {'yes' if record['within_target'][key] else 'NO'}"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
