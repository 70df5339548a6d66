"""Mid-epoch checkpoint and resume with torchdata's StatefulDataLoader."""

from __future__ import annotations

from _common import mnist1d_index
from torchdata.stateful_dataloader import StatefulDataLoader

import graphwalk as gw


def main(num_workers: int = 2, stop_after: int = 20) -> dict:
    index, dataset = mnist1d_index()

    def loader() -> StatefulDataLoader:
        sampler = gw.GraphWalkBatchSampler(index, batch_size=64, graph="er", seed=0)
        return StatefulDataLoader(dataset, batch_sampler=sampler, num_workers=num_workers)

    first = loader()
    it = iter(first)
    seen = [next(it)[1] for _ in range(stop_after)]  # train for a while ...
    checkpoint = first.state_dict()  # ... save with the model's checkpoint
    resumed = loader()
    resumed.load_state_dict(checkpoint)  # a new process would do this after a crash
    rest = [y for _, y in resumed]
    reference = [y for _, y in loader()]
    same = len(seen) + len(rest) == len(reference) and all(
        (a == b).all() for a, b in zip(seen + rest, reference, strict=True)
    )
    print(
        f"resumed after {stop_after} batches: {len(rest)} left, identical to an uninterrupted run: {same}"
    )
    return {"identical": bool(same), "resumed_batches": len(rest), "total": len(reference)}


if __name__ == "__main__":
    main()
