"""Training beyond one process: Lightning's DDP with two CPU processes (gloo), through the CLI as a user runs
it (Lightning's ``ddp`` starts the second rank by running the same command line again)."""
import argparse
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, patience
import torch

from workbench import scale


def _run(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "workbench", *args], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=patience(600))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_two_ddp_processes_train_the_lm_on_different_texts_and_the_export_reloads(smoke_corpus, tmp_path):
    out = tmp_path / "lm"
    _run(["train-lm", "--corpus-size", "smoke", "--max-steps", "6", "--hidden-size", "48", "--layers", "1",
          "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--out", str(out)], tmp_path)
    meta = json.loads((out / "training.json").read_text())
    assert meta["trainer"] == {"devices": 2, "num_nodes": 1, "strategy": "ddp", "accelerator": "cpu"}
    ranks = meta["ranks"]
    assert ranks["world_size"] == 2 and ranks["batches_per_rank"] == [6, 6]
    assert ranks["batches_without_tensors"] == 0
    assert ranks["shared_batches"] == 0, "both ranks trained on the same batches: the IterableDataset is not sharded"
    from workbench.lm.domain import load_domain_lm, perplexity
    lm = load_domain_lm(out)
    assert lm.n_params == meta["params"]
    assert 1 < perplexity(lm, ["set a timer for ten minutes"]) < float("inf")
    assert 1 < meta["perplexity"]["dev"] < float("inf")
    assert not list(tmp_path.glob(".lm.training-*")), "a rank left its temporary export behind"


def test_three_ddp_processes_train_the_asr_recipe_with_lightnings_sampler_and_the_nemo_reloads(smoke_corpus, tmp_path):
    """Three, so that two ranks Lightning starts redo the recipe's preparation (tokenizer, manifests) side by side."""
    from workbench.asr.recipe import SMOKE_OVERRIDES
    out = tmp_path / "asr"
    over = [o for o in SMOKE_OVERRIDES if not o.startswith("trainer.max_steps")]
    _run(["train-asr", "--out", str(out), "--work", str(tmp_path / "work"), *over, "trainer.max_steps=4",
          "trainer.devices=3", "trainer.strategy=ddp", "trainer.accelerator=cpu"], tmp_path)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4
    assert metrics["ranks"]["world_size"] == 3 and metrics["ranks"]["batches_per_rank"] == [4, 4, 4]
    assert metrics["ranks"]["batches_without_tensors"] == 0 and metrics["ranks"]["shared_batches"] == 0
    # the export scored every test utterance (not one rank's share of them) and reloads as a NeMo model
    from workbench.data import open_dataset
    assert metrics["n_test"] == len(open_dataset(smoke_corpus, "test").entries)
    from nemo.collections.asr.models import ASRModel
    model = ASRModel.restore_from(str(out / "model.nemo"), map_location="cpu")
    assert sum(p.numel() for p in model.parameters()) == metrics["n_params"]


def test_shard_splits_items_disjointly_and_refuses_too_few(monkeypatch):
    items = list(range(10))
    assert scale.shard(items) == items                       # one process: everything
    parts = []
    for r in range(3):
        monkeypatch.setattr(scale, "rank_world", lambda r=r: (r, 3))
        parts.append(scale.shard(items))
    assert sorted(sum(parts, [])) == items and all(parts)
    assert not set(parts[0]) & set(parts[1])
    monkeypatch.setattr(scale, "rank_world", lambda: (0, 11))
    with pytest.raises(ValueError, match="10 training items cannot be shared by 11 processes"):
        scale.shard(items)


def test_batch_digest_finds_tensors_in_dataclasses_and_tells_batches_apart():
    from dataclasses import dataclass

    @dataclass
    class Batch:
        audio: torch.Tensor
        tokens: list

    a = Batch(torch.zeros(2, 3), [torch.tensor([1, 2])])
    b = Batch(torch.zeros(2, 3), [torch.tensor([1, 3])])
    assert scale.batch_digest(a) != scale.batch_digest(b)
    assert scale.batch_digest(a) == scale.batch_digest(Batch(torch.zeros(2, 3), [torch.tensor([1, 2])]))
    assert scale.batch_digest({"text": "no tensors"}) is None
    half = torch.arange(10000, dtype=torch.bfloat16)           # mixed precision, and long enough to be sampled
    assert scale.batch_digest([half]) != scale.batch_digest([half.flip(0)])


def test_trainer_args_reach_lightning_unchanged():
    p = argparse.ArgumentParser()
    scale.add_trainer_args(p)
    assert scale.trainer_kwargs(p.parse_args([])) == {"devices": 1, "num_nodes": 1}
    kw = scale.trainer_kwargs(p.parse_args(["--devices", "0,1", "--num-nodes", "2", "--strategy", "ddp",
                                            "--accelerator", "gpu"]))
    assert kw == {"devices": "0,1", "num_nodes": 2, "strategy": "ddp", "accelerator": "gpu"}
    assert scale.trainer_kwargs(p.parse_args(["--devices", "-1"]))["devices"] == -1


def test_multi_process_settings_are_recognised_and_s2s_refuses_all_stages_in_one_command():
    assert not scale.multi_process({}) and not scale.multi_process({"devices": 1, "num_nodes": 1})
    assert scale.multi_process({"devices": 2}) and scale.multi_process({"num_nodes": 2})
    assert scale.multi_process({"strategy": "ddp"}) and scale.multi_process({"devices": "0,1"})
    from workbench.s2s.recipe import S2SModelError, train_s2s
    with pytest.raises(S2SModelError, match="one command each"):
        train_s2s("all", trainer_kwargs={"devices": 2, "strategy": "ddp", "accelerator": "cpu"})


_HEAP_PROBE = """
import ctypes, sys
from workbench.scale import fixed_mmap_threshold
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes, libc.mallinfo2.restype = ctypes.c_void_p, [ctypes.c_void_p], MallInfo2
fixed = fixed_mmap_threshold(1 << 20) if sys.argv[1] == "fixed" else None
libc.free(libc.malloc(8 << 20))        # freeing a mapped block raises glibc's dynamic threshold past 8 MB
before = libc.mallinfo2().hblks
block = libc.malloc(3 << 20)
print(fixed, libc.mallinfo2().hblks - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_fixed_mmap_threshold_keeps_mid_sized_buffers_off_the_heap():
    """Without it, a 3 MB buffer after a freed 8 MB one comes from the heap (where a long run's buffers
    fragment); with it, from its own mapping, returned when freed."""
    def probe(mode):
        r = subprocess.run([sys.executable, "-c", _HEAP_PROBE, mode], env={**os.environ, "PYTHONPATH": str(REPO)},
                           capture_output=True, text=True, timeout=patience(60))
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout.split()
    assert probe("default") == ["None", "0"]
    assert probe("fixed") == ["True", "1"]
