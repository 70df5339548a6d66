"""Two real processes with torch.distributed (gloo on the CPU)."""

import json
import os
import socket
import subprocess
import sys

import pytest

import graphwalk as gw
from tests.conftest import make_blobs

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
