"""Two processes under torchrun on the CPU (gloo) end with identical parameters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

JOB = Path(__file__).with_name("distributed_job.py")


def run_two_processes(tmp_path: Path, *arguments: str) -> list[dict]:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(JOB),
        "--output",
        str(tmp_path),
        *arguments,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=environment
    )
    outputs = [tmp_path / f"rank{rank}.pt" for rank in (0, 1)]
    if not all(path.is_file() for path in outputs):
        pytest.fail(f"torchrun exited {completed.returncode}:\n{completed.stderr[-4000:]}")
    return [torch.load(path, weights_only=False) for path in outputs]


@pytest.mark.parametrize(
    ("objective", "accumulation"),
    [
        ("elbo", 1), ("aggressive", 1), ("aggressive", 2), ("sa_vae", 1),
        # The objectives that only reweight the KL term: cheap, and every one is covered.
        ("beta", 1), ("anneal", 1), ("free_bits", 2),
    ],
)
def test_ranks_end_with_identical_parameters(tmp_path, objective, accumulation):
    ranks = run_two_processes(
        tmp_path, "--objective", objective, "--gradient-accumulation-steps", str(accumulation)
    )
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["rank"] for r in ranks] == [0, 1]
    first, second = (r["final"] for r in ranks)
    for name in first:
        assert torch.equal(first[name], second[name]), name
    assert any(not torch.equal(first[n], ranks[0]["initial"][n]) for n in first)
    if objective == "aggressive":
        assert ranks[0]["inner_steps"] == ranks[1]["inner_steps"] >= 4
