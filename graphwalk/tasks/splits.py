"""Class splits for meta-learning: disjoint meta-train / meta-validation / meta-test classes.

A :class:`ClassSplit` names the classes (cluster ids of one level of an index) of each part. Make
one seeded with :func:`split_classes`, or take the standard CIFAR-FS split of CIFAR-100
(Bertinetto et al. 2019: 64 / 16 / 20 classes) with :func:`cifar_fs_split`. A split is stored with
a run as JSON (:meth:`ClassSplit.to_dict` / :meth:`ClassSplit.from_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphwalk.errors import InputError
from graphwalk.validation import check_int

__all__ = [
    "CIFAR100_CLASSES",
    "CIFAR_FS",
    "PARTS",
    "ClassSplit",
    "cifar_fs_split",
    "parse_split",
    "split_classes",
]

PARTS = ("train", "val", "test")

#: CIFAR-100's fine labels, in label order (``fine_label_names`` of its ``meta`` file).
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch "
    "crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo "
    "keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse "
    "mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy "
    "porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper "
    "snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()

#: The CIFAR-FS split (Bertinetto et al. 2019, "Meta-learning with differentiable closed-form
#: solvers"): 16 validation and 20 test classes by name; the other 64 are the training classes.
CIFAR_FS: dict[str, tuple[str, ...]] = {
    "val": tuple(
        "beaver beetle butterfly camel cattle crab crocodile flatfish lamp maple_tree motorcycle "
        "otter sea shark television tractor".split()
    ),
    "test": tuple(
        "baby bed bicycle chimpanzee fox leopard man pickup_truck plain poppy rocket rose snail "
        "sweet_pepper table telephone wardrobe whale woman worm".split()
    ),
}
CIFAR_FS["train"] = tuple(
    c for c in CIFAR100_CLASSES if c not in CIFAR_FS["val"] and c not in CIFAR_FS["test"]
)


@dataclass(frozen=True)
class ClassSplit:
    """The classes of each part of a meta-learning split: ids of the clusters of ``level``.

    Attributes:
        level: the index level whose clusters are the classes.
        train, val, test: sorted int64 class ids, pairwise disjoint.
        source: how it was made (``"seeded"``, ``"cifar-fs"``, ``"given"``; ``"none"``: no
            classes held out, the parts may share classes: meta-training and testing differ in
            their items only, as in CACTUs' protocol).
        seed: the seed of a seeded split.
    """

    level: str
    train: npt.NDArray[np.int64]
    val: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]
    source: str = "given"
    seed: int | None = None

    def __post_init__(self) -> None:
        parts = {p: np.unique(np.asarray(getattr(self, p), np.int64)) for p in PARTS}
        for p, arr in parts.items():
            object.__setattr__(self, p, arr)
        if self.source == "none":
            return
        for i, a in enumerate(PARTS):
            for b in PARTS[i + 1 :]:
                both = np.intersect1d(parts[a], parts[b])
                if both.size:
                    raise InputError(
                        f"a class split's parts must be disjoint, but {a} and {b} share "
                        f"{both.size} classes (first: {int(both[0])})"
                    )

    def part(self, name: str) -> npt.NDArray[np.int64]:
        """The classes of ``"train"``, ``"val"`` or ``"test"``."""
        if name not in PARTS:
            raise InputError(f"a split has parts {', '.join(PARTS)}, not {name!r}")
        arr: npt.NDArray[np.int64] = getattr(self, name)
        return arr

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "source": self.source,
            "seed": self.seed,
            **{p: [int(c) for c in self.part(p)] for p in PARTS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassSplit:
        try:
            return cls(
                level=str(d["level"]),
                train=np.asarray(d["train"], np.int64),
                val=np.asarray(d["val"], np.int64),
                test=np.asarray(d["test"], np.int64),
                source=str(d.get("source", "given")),
                seed=d.get("seed"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"not a class split ({type(e).__name__}: {e})") from None


def _parts(sizes: Sequence[float], n: int) -> tuple[int, int, int]:
    """Class counts of (train, val, test) from counts (integers) or fractions summing to 1."""
    if len(sizes) != 3:
        raise InputError(f"a split has 3 parts (train, val, test), but {len(sizes)} sizes given")
    if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in sizes):
        counts = tuple(
            check_int(f"split size {p}", s, minimum=0) for p, s in zip(PARTS, sizes, strict=True)
        )
        if sum(counts) > n:
            raise InputError(
                f"the split asks for {sum(counts)} classes ({counts[0]}/{counts[1]}/{counts[2]}) "
                f"but the level has {n}; ask for at most {n}"
            )
        return counts[0], counts[1], counts[2]
    fr = [float(s) for s in sizes]
    if any(not 0.0 <= f <= 1.0 for f in fr) or abs(sum(fr) - 1.0) > 1e-9:
        raise InputError(
            f"split fractions must be in [0, 1] and sum to 1, but got {sizes!r}; or give class "
            "counts as integers"
        )
    val, test = round(fr[1] * n), round(fr[2] * n)
    return n - val - test, val, test


def split_classes(
    classes: int | npt.ArrayLike,
    sizes: Sequence[float],
    *,
    level: str,
    seed: int = 0,
) -> ClassSplit:
    """A seeded split of a level's classes into train / val / test.

    Args:
        classes: the number of classes of the level (ids ``0..n-1``), or the class ids to split.
        sizes: class counts ``(64, 16, 20)`` or fractions ``(0.6, 0.2, 0.2)``.
        level: the level the ids belong to (stored with the split).
        seed: the permutation's seed.
    """
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        ids = np.arange(check_int("classes", classes, minimum=1), dtype=np.int64)
    else:
        ids = np.unique(np.asarray(classes, np.int64))
    n_tr, n_va, n_te = _parts(sizes, ids.size)
    perm = np.random.default_rng(check_int("seed", seed, minimum=0)).permutation(ids)
    return ClassSplit(
        level=level,
        train=perm[:n_tr],
        val=perm[n_tr : n_tr + n_va],
        test=perm[n_tr + n_va : n_tr + n_va + n_te],
        source="seeded",
        seed=int(seed),
    )


def cifar_fs_split(values: npt.ArrayLike, *, level: str = "labels") -> ClassSplit:
    """The CIFAR-FS split for a level whose clusters stand for CIFAR-100's fine labels.

    Args:
        values: the label value of each cluster of the level (``index.level(level).values``: a
            label level built from CIFAR-100's ``label``).
        level: the level's name.
    """
    vals = np.asarray(values, np.int64)
    if vals.size != 100 or set(vals.tolist()) != set(range(100)):
        raise InputError(
            f"the CIFAR-FS split needs a level of CIFAR-100's 100 fine classes, but level "
            f"{level!r} has {vals.size} clusters; index cifar100 with --groups label"
        )
    cluster_of = {int(v): c for c, v in enumerate(vals.tolist())}
    ids = {p: [cluster_of[CIFAR100_CLASSES.index(name)] for name in CIFAR_FS[p]] for p in PARTS}
    return ClassSplit(
        level=level,
        train=np.asarray(ids["train"]),
        val=np.asarray(ids["val"]),
        test=np.asarray(ids["test"]),
        source="cifar-fs",
    )


def parse_split(text: str) -> tuple[str, tuple[float, ...]]:
    """A class split as the command line gives it: ``none``, ``cifar-fs``, or ``A/B/C`` (train,
    validation and test classes by count, ``64/16/20``, or by fraction, ``0.6/0.2/0.2``).
    Returns ``(kind, sizes)``."""
    if text in ("none", "cifar-fs"):
        return text, ()
    parts = text.split("/")
    try:
        if len(parts) != 3:
            raise ValueError
        if all(p.isdigit() for p in parts):
            return "seeded", tuple(int(p) for p in parts)
        sizes = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"class split {text!r}: give none, cifar-fs, or A/B/C train/validation/test classes "
            "by count (5/0/5) or fraction (0.6/0.2/0.2)"
        ) from None
    _parts(sizes, 100)  # fractions in [0, 1] summing to 1
    return "seeded", sizes
