"""FSDP2 data parallelism, Ulysses training and sharded (DCP) checkpoints through the real trainer.

Every scenario trains the same tiny DiT on the same global batches (train_worker.py) and must reproduce the
one-process run: the losses logged per step and the final weights (live and EMA), within float tolerance.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from torchrun import run_torchrun  # noqa: E402

WORKER = Path(__file__).with_name("train_worker.py")
STEPS = 4


def losses(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r["split"] == "train"]


def assert_same_run(a: Path, b: Path) -> None:
    la, lb = losses(a), losses(b)
    assert len(la) == len(lb) == STEPS
    assert max(abs(x - y) / abs(y) for x, y in zip(la, lb)) < 1e-5, (la, lb)
    for sub in ("final/model.safetensors", "final/live/model.safetensors"):
        wa, wb = load_file(a / sub), load_file(b / sub)
        assert wa.keys() == wb.keys()
        err = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
        assert err < 1e-5, f"{sub}: weights differ by {err:.2e}"


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    res = subprocess.run([sys.executable, str(WORKER), str(out), str(STEPS)], capture_output=True, text=True,
                         timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.mark.slow
def test_fsdp_training_matches_one_process(single, tmp_path):
    out = tmp_path / "fsdp"
    run_torchrun(WORKER, str(out), str(STEPS))
    assert_same_run(out, single)
    ckpt = out / "checkpoints" / f"step_{STEPS:08d}" / "sharded"
    assert len(list(ckpt.glob("*.safetensors"))) == 2          # one shard file per rank, no pickle


@pytest.mark.slow
def test_ulysses_training_matches_one_process(single, tmp_path):
    out = tmp_path / "sp"
    run_torchrun(WORKER, str(out), str(STEPS), "2")               # dist.sp_size = 2: one group of 2 ranks
    assert_same_run(out, single)


@pytest.mark.slow
def test_sharded_checkpoint_saved_by_two_ranks_resumes_with_one(single, tmp_path):
    out = tmp_path / "resume"
    run_torchrun(WORKER, str(out), "2")                            # 2 steps with 2 ranks, sharded checkpoint
    assert (out / "checkpoints" / "step_00000002" / "sharded").is_dir()
    res = subprocess.run([sys.executable, str(WORKER), str(out), str(STEPS), "--resume"], capture_output=True,
                         text=True, timeout=600, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert_same_run(out, single)
