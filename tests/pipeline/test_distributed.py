"""Two CPU processes under torchrun (gloo): rank 0 decides, rank 1 replays, weights stay equal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_torchrun_two_ranks_end_identical(tmp_path):  # type: ignore[no-untyped-def]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"]
    cmd += [str(ROOT / "tests" / "pipeline" / "ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["replayed"] == 0 and r1["replayed"] == 2  # a mask and a physical cut, both from rank 0
    assert r0["state"].keys() == r1["state"].keys()
    for name, value in r0["state"].items():
        assert torch.equal(value, r1["state"][name]), name
    # BatchNorm statistics are synced from rank 0 after each epoch, so both ranks evaluate alike
    assert [r["val_loss"] for r in r0["history"]] == [r["val_loss"] for r in r1["history"]]
    # only rank 0 wrote the run's files: one checkpoint, one saved model
    run_dir = tmp_path / "run"
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "model" / "prunekit.json").is_file()
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temp files left behind
