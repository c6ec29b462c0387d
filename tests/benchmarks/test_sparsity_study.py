"""The sparsity study's merge (seeds and extra arms, repeated rows refused) and its table."""

import json

import pytest
from sparsity_study import merge, render

META = {
    "command": "python benchmarks/sparsity_study.py", "model": "ResNet-20", "dataset": "fashion-mnist (60000/10000)",
    "seeds": [0], "arms": ["plain", "greg"], "pretrain_epochs": 2, "sparsify_epochs": 1, "finetune_epochs": 1,
    "lr": 0.1, "sparsify_lr": 0.01, "finetune_lr": 0.01, "batch_size": 128, "max_batches": 160,
    "target_macs": 0.5, "threshold": 0.01, "prunekit": "0.1.0", "torch": "2", "cpu_count": 2, "torch_threads": 1,
    "strengths": {"group_lasso": [0.1], "greg": {}, "slimming": 0.001}, "wall_s": 60.0,
    "loadavg_1min_before": 1.0, "loadavg_1min_after": 2.0, "partial": None,
}  # fmt: skip


def _row(seed, arm, pruned):
    return {"seed": seed, "arm": arm, "criterion": "l1", "acc_pretrained": 0.9, "acc_before_prune": 0.9,
            "acc_pruned": pruned, "acc_finetuned": 0.89, "macs_ratio": 0.47,
            "sparsify_log": [{"below": 0.5}] if arm != "plain" else [{}]}  # fmt: skip


def _write(path, seeds, rows, **meta):
    path.write_text(json.dumps({"meta": {**META, "seeds": seeds, **meta}, "results": rows}))
    return str(path)


def test_merge_combines_seeds_and_extra_arms_and_renders_means(tmp_path):
    a = _write(tmp_path / "a.json", [0], [_row(0, "plain", 0.1), _row(0, "greg", 0.88)])
    b = _write(tmp_path / "b.json", [1], [_row(1, "plain", 0.3), _row(1, "greg", 0.86)])
    c = _write(tmp_path / "c.json", [0], [_row(0, "group_lasso@0.1", 0.2)], arms=["group_lasso"])
    data = merge([a, b, c])
    assert data["meta"]["seeds"] == [0, 1] and data["meta"]["strengths"]["group_lasso"] == [0.1]
    md = render(data)
    assert "| plain | l1 | 47.0% |" in md and "20.00% (10.00%, 30.00%)" in md
    assert "| greg |" in md and "87.00% (88.00%, 86.00%)" in md and "50%, 50%" in md
    assert "PARTIAL" not in md


def test_merge_refuses_repeated_rows_and_other_settings(tmp_path):
    a = _write(tmp_path / "a.json", [0], [_row(0, "plain", 0.1)])
    with pytest.raises(SystemExit, match="repeat"):
        merge([a, _write(tmp_path / "b.json", [0], [_row(0, "plain", 0.2)])])
    with pytest.raises(SystemExit, match="max_batches"):
        merge([a, _write(tmp_path / "c.json", [1], [_row(1, "plain", 0.2)], max_batches=10)])
