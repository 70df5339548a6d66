"""Two real processes with torch.distributed (gloo on the CPU)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import graphwalk as gw
from tests.conftest import make_blobs

ROOT = Path(__file__).resolve().parents[2]  # the repository (tests/walk/ is two below)

WORKER = r"""
import json, os, sys
import torch.distributed as dist
from graphwalk import GraphIndex, GraphWalkBatchSampler
dist.init_process_group("gloo", init_method="env://")
index = GraphIndex.load(sys.argv[1])
out = {}
for graph in ("er", "knn"):
    s = GraphWalkBatchSampler(index, 40, graph=graph, seed=11)  # rank and world from torch.distributed
    out[graph] = {"rank": s.rank, "world": s.world_size, "len": len(s),
                  "epochs": [list(s) for _ in range(2)]}
with open(sys.argv[2] + f".{dist.get_rank()}", "w") as f:
    json.dump(out, f)
dist.barrier()
dist.destroy_process_group()
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_share_an_epoch_without_overlap(tmp_path):
    x, y = make_blobs(n=510, dim=5, centers=6)
    gw.build_index(x, labels=y, clusters=15, graphs=["er", "knn"], k=4, out=tmp_path / "i.gw")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "i.gw"), str(tmp_path / "out")],
            env={**env, "RANK": str(r)},
        )
        for r in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    res = [json.loads((tmp_path / f"out.{r}").read_text()) for r in range(2)]
    for graph in ("er", "knn"):
        a, b = res[0][graph], res[1][graph]
        assert (a["rank"], b["rank"], a["world"]) == (0, 1, 2)
        assert a["len"] == b["len"] == len(a["epochs"][0]) == len(b["epochs"][0])
        for e in range(2):
            items_a = [i for batch in a["epochs"][e] for i in batch]
            items_b = [i for batch in b["epochs"][e] for i in batch]
            assert not set(items_a) & set(items_b)
            assert sorted(items_a + items_b) == list(range(510))
        assert a["epochs"][0] != a["epochs"][1]
        # the same walk as a single process computing both ranks' shares
        local = gw.GraphWalkBatchSampler(
            gw.GraphIndex.load(tmp_path / "i.gw"), 40, graph=graph, seed=11, rank=1, world_size=2
        )
        assert list(local) == b["epochs"][0]


POLICY_WORKER = r"""
import json, sys
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset
from graphwalk import GraphIndex, GraphWalkBatchSampler
from tests.walk.test_policy import LearningPolicy, _reward
dist.init_process_group("gloo", init_method="env://")
index = GraphIndex.load(sys.argv[1])
workers = int(sys.argv[3])
out = {}
for graph in ("er", "knn"):
    policy = LearningPolicy(index.graph(graph).n_nodes, seed=5)  # same class and seed everywhere
    kw = {"k": 2} if graph == "er" else {}
    s = GraphWalkBatchSampler(index, 30, graph=graph, seed=11, policy=policy, **kw)
    loader = DataLoader(
        TensorDataset(torch.arange(index.n_items)), batch_sampler=s, num_workers=workers
    )
    epochs = []
    for epoch in range(2):
        s.set_epoch(epoch)
        batches = []
        for (x,) in loader:
            items = x.tolist()
            info = s.report(_reward(items))  # a collective: all ranks' rewards reach all ranks
            batches.append([info.epoch, info.global_batch, info.delay, items])
        epochs.append(batches)
    s.set_epoch(2)
    next(iter(s))  # the next epoch's first decision hands the last rewards over
    out[graph] = {
        "len": len(s),
        "epochs": epochs,
        "selects": policy.selects,
        "observed": [[st.epoch, st.batch, st.root, st.community.tolist()] for st in policy.observed],
        "learned": [[st.epoch, st.batch, r] for st, r in policy.learned],
        "resets": policy.resets,
    }
with open(sys.argv[2] + f".{dist.get_rank()}", "w") as f:
    json.dump(out, f)
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_two_gloo_ranks_with_a_learning_policy_make_the_same_choices(tmp_path, workers):
    from tests.walk.test_policy import _reward

    n = 510
    x, y = make_blobs(n=n, dim=5, centers=6)
    gw.build_index(x, labels=y, clusters=15, graphs=["er", "knn"], k=4, out=tmp_path / "i.gw")
    script = tmp_path / "policy_worker.py"
    script.write_text(POLICY_WORKER)
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "i.gw"),
                str(tmp_path / "out"),
                str(workers),
            ],
            env={**env, "RANK": str(r)},
        )
        for r in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    res = [json.loads((tmp_path / f"out.{r}").read_text()) for r in range(2)]
    for graph in ("er", "knn"):
        a, b = res[0][graph], res[1][graph]
        nb = a["len"]
        assert b["len"] == nb == len(a["epochs"][0]) == len(b["epochs"][1])
        # both ranks decided every global batch (a rank's policy must advance with the others'
        # even for batches it does not train on), asked the same questions with the same
        # rewards learned so far, and got the same answers
        every = [(e, gb) for e in range(2) for gb in range(2 * nb)]
        sa = {(r["epoch"], r["batch"]): r for r in a["selects"]}
        sb = {(r["epoch"], r["batch"]): r for r in b["selects"]}
        assert [k for k in sb if k[0] < 2] == every
        assert [k for k in sa if k[0] < 2] == every
        assert [sa[k] for k in sorted(sa.keys() & sb.keys())] == [
            sb[k] for k in sorted(sa.keys() & sb.keys())
        ]
        n_obs = min(len(a["observed"]), len(b["observed"]))
        assert a["observed"][:n_obs] == b["observed"][:n_obs]
        assert a["resets"] == b["resets"]
        # each batch's reward, computed by the rank that trained it
        rewards = {}
        for rank, r in enumerate(res):
            for e, epoch in enumerate(r[graph]["epochs"]):
                for i, (ep, gb, delay, items) in enumerate(epoch):
                    assert (ep, gb) == (e, rank + 2 * i)
                    assert delay == (min(2 * 2, nb - 1 - i) if workers else 0)
                    rewards[(e, gb)] = _reward(items)
        # every rank's policy learned from both ranks' batches, each reward exactly once, in
        # batch order
        want = [[e, gb, rewards[(e, gb)]] for e in range(2) for gb in range(2 * nb)]
        assert a["learned"] == want
        assert b["learned"] == want
        for e in range(2):
            items_a = [i for *_, batch in a["epochs"][e] for i in batch]
            items_b = [i for *_, batch in b["epochs"][e] for i in batch]
            assert not set(items_a) & set(items_b)
            assert sorted(items_a + items_b) == list(range(n))
