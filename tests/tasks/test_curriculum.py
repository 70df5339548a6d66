"""Curricula (graphwalk/tasks/curriculum.py, curriculum_sampler.py, difficulty.py, bandit.py):
schedules as specified, files, controls that differ in order only, the sampler's guarantees
(exact len, determinism, resume across a task change, ranks), the bandit over tasks, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import graphwalk as gw
from graphwalk.errors import InputError
from graphwalk.tasks import Curriculum, CurriculumSampler, Stage, Task
from graphwalk.tasks.bandit import difficulty_bands, task_bandit_sampler, task_index
from graphwalk.tasks.curriculum import pacing_share
from graphwalk.tasks.difficulty import graph_difficulty, rank_items, transfer_difficulty


def _blobs(n_classes=10, per=60, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), per)
    x = centres[y] + rng.normal(size=(y.size, dim))
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def data():
    x, y = _blobs()
    index = gw.build_index(
        x, labels={"label": y, "parent": y // 2}, groups=["labels"], graphs=["knn"], k=6, seed=0
    )
    scores = transfer_difficulty(x, y, seed=0)
    return x, y, index, scores


def _sampler(data, cur, **kw):
    _x, _y, index, scores = data
    return CurriculumSampler(cur, index, 32, scores=scores, **kw)


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    "kind,i,expected",
    [
        ("exp", 0, 0.1),
        ("exp", 9, 0.1),
        ("exp", 10, 0.2),
        ("exp", 25, 0.4),
        ("exp", 40, 1.0),
        ("step", 49, 0.1),
        ("step", 50, 1.0),
        ("linear", 25, 0.1 + 0.9 * 25 / 50),
        ("linear", 60, 1.0),
        ("root", 25, math.sqrt(0.01 + 0.99 * 25 / 50)),
    ],
)
def test_pacing_functions_follow_their_formulas(kind, i, expected):
    got = pacing_share(kind, i, start=0.1, inc=2.0, step=10 if kind == "exp" else 50, ramp=50)
    assert got == pytest.approx(expected)


def test_varied_exponential_grows_at_the_cumulative_lengths():
    shares = [
        pacing_share("varexp", i, start=0.1, inc=2, step=1, ramp=1, lengths=(5, 10))
        for i in range(20)
    ]
    assert shares[:5] == [0.1] * 5 and shares[5:15] == [0.2] * 10 and shares[15] == 0.4


def test_a_pacing_curriculum_lays_the_shares_out_as_stages():
    cur = Curriculum.pacing("exp", steps=200, start=0.1, inc=2.0, step=20)
    assert [s.task.share for s in cur.stages] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert [s.steps for s in cur.stages[:-1]] == [20] * 4
    assert cur.starts == [0, 20, 40, 60, 80]
    assert cur.stage_at(0) == 0 and cur.stage_at(19) == 0 and cur.stage_at(20) == 1
    assert cur.stage_at(10_000) == 4  # the last stage lasts until training ends
    lin = Curriculum.pacing("linear", steps=100, start=0.2)
    shares = [s.task.share for s in lin.stages]
    assert shares == sorted(shares) and shares[-1] == 1.0 and shares[0] == pytest.approx(0.2)
    assert lin.starts[-1] <= 50  # linear reaches all the data at half the budget


def test_a_hierarchy_grows_the_groups_then_takes_everything():
    cur = Curriculum.hierarchy("superclass", 20, steps=400, start=2, inc=2.0)
    assert [s.task.groups for s in cur.stages] == [2, 4, 8, 16, None]
    assert {s.task.level for s in cur.stages} == {"superclass"}
    assert sum(s.steps for s in cur.stages[:-1]) == 200


def test_controls_differ_in_order_only():
    cur = Curriculum.pacing("linear", steps=100)
    c = cur.controls()
    assert set(c) == {"easy", "random", "hard"}
    for o, other in c.items():
        assert other.order == o and other.stages == cur.stages


def test_files_round_trip_json_and_toml(tmp_path):
    cur = Curriculum(
        (
            Stage(Task(classes=(0, 1), share=0.5, name="two"), steps=10),
            Stage(Task(groups=2, level="parent", data_order="walk"), steps=5),
            Stage(Task()),
        ),
        order="hard",
        score="graph",
    )
    cur.save(tmp_path / "c.json")
    again = Curriculum.load(tmp_path / "c.json")
    assert again.stages == cur.stages and again.order == "hard" and again.score == "graph"
    (tmp_path / "c.toml").write_text(
        'order = "random"\n[pacing]\nkind = "exp"\nsteps = 100\nstart = 0.25\ninc = 2.0\nstep = 10\n'
    )
    t = Curriculum.load(tmp_path / "c.toml")
    assert t.order == "random" and [s.task.share for s in t.stages] == [0.25, 0.5, 1.0]
    (tmp_path / "h.toml").write_text('[hierarchy]\nlevel = "parent"\ngroups = 5\nsteps = 40\n')
    h = Curriculum.load(tmp_path / "h.toml")
    assert [s.task.groups for s in h.stages] == [2, 4, None]


# ----------------------------------------------------------------------------- difficulty


def test_transfer_scores_find_the_flipped_labels():
    x, y = _blobs(seed=1)
    rng = np.random.default_rng(0)
    flip = rng.random(y.size) < 0.2
    noisy = np.where(flip, (y + 1 + rng.integers(0, 9, y.size)) % 10, y)
    s = transfer_difficulty(x, noisy, seed=0)
    assert s[flip].mean() > 0.8 > 0.4 > s[~flip].mean()
    easy = rank_items(s, "easy") < 0.5 * y.size
    assert flip[easy].mean() < 0.05 < flip.mean()  # the easy half is almost clean


def test_graph_scores_are_the_share_of_neighbours_of_another_class(data):
    _x, y, index, _ = data
    s = graph_difficulty(index, y)
    g = index.graph("knn")
    i = 7
    nb = g.indices[g.indptr[i] : g.indptr[i + 1]]
    assert s[i] == pytest.approx(np.mean(y[nb] != y[i]))


def test_rank_orders():
    s = np.array([0.3, 0.1, 0.2, 0.1])
    assert rank_items(s, "easy", seed=0)[1:4:2].tolist() in ([0, 1], [1, 0])
    assert rank_items(s, "easy")[0] == 3 and rank_items(s, "hard")[0] == 0
    r = [rank_items(s, "random", seed=k).tolist() for k in range(5)]
    assert len({tuple(x) for x in r}) > 1 and all(sorted(x) == [0, 1, 2, 3] for x in r)


# ----------------------------------------------------------------------------- the sampler


def test_batches_come_from_the_pool_of_the_stage_in_force(data):
    cur = Curriculum.pacing("exp", steps=60, start=0.1, inc=2.0, step=5)
    s = _sampler(data, cur)
    assert len(s) == math.ceil(600 / 32) == len(list(s))
    step = 0
    for epoch in range(3):
        s.set_epoch(epoch)
        for b in s:
            assert len(b) == 32 == len(set(b))
            assert set(b) <= set(s.pool(cur.stage_at(step)).tolist())
            step += 1
    sizes = s.pool_sizes
    assert sizes == sorted(sizes) and sizes[-1] == 600
    assert sizes[0] == 60  # 10% of each class of 60


def test_share_keeps_each_class_easiest_first(data):
    _, y, _, scores = data
    cur = Curriculum((Stage(Task(share=0.25), 5), Stage(Task())))
    pool = _sampler(data, cur).pool(0)
    assert np.bincount(y[pool]).tolist() == [15] * 10  # class-balanced
    for c in range(10):
        mine = np.flatnonzero(y == c)
        kept = np.intersect1d(mine, pool)
        assert scores[kept].max() <= np.sort(scores[mine])[14] + 1e-12
    hard = _sampler(data, cur.with_order("hard")).pool(0)
    rand = _sampler(data, cur.with_order("random")).pool(0)
    assert hard.size == rand.size == pool.size  # controls: same sizes, other items
    assert scores[pool].mean() < scores[rand].mean() < scores[hard].mean()


def test_a_pool_holds_at_least_a_batch_per_rank(data):
    cur = Curriculum((Stage(Task(share=0.01), 5), Stage(Task())))
    s = _sampler(data, cur, rank=0, world_size=2)
    assert s.pool_sizes[0] >= 64


def test_each_pass_sees_every_pool_item_once_before_any_twice(data):
    cur = Curriculum((Stage(Task(share=0.5), 1000), Stage(Task())))
    s = _sampler(data, cur)
    per = 300 // 32
    seen = [i for t in range(per) for i in s.batch_at(t)]
    assert len(set(seen)) == len(seen) == per * 32


def test_the_same_seed_gives_the_same_batches_and_another_seed_others(data):
    cur = Curriculum.pacing("linear", steps=40)
    a, b, c = (list(_sampler(data, cur, seed=k)) for k in (3, 3, 4))
    assert a == b and a != c


def test_resume_across_a_change_of_task_equals_the_uninterrupted_run(data):
    cur = Curriculum((Stage(Task(classes=(0, 1, 2)), 7), Stage(Task(share=0.5), 6), Stage(Task())))
    full = _sampler(data, cur)
    full.set_epoch(1)
    want = list(full)
    s = _sampler(data, cur)
    s.set_epoch(1)
    it = iter(s)
    head = [next(it) for _ in range(5)]  # step 19 + 5: the task changes inside the rest
    state = json.loads(json.dumps(s.state_dict()))
    r = _sampler(data, cur)
    r.load_state_dict(state)
    assert head + list(r) == want
    # a state saved by another curriculum is refused
    other = _sampler(data, cur.with_order("random"))
    with pytest.raises(InputError, match="same curriculum"):
        other.load_state_dict(state)


def test_ranks_take_disjoint_batches_of_the_same_task(data):
    cur = Curriculum((Stage(Task(classes=(0, 1, 2, 3)), 4), Stage(Task())))
    r0, r1 = (_sampler(data, cur, rank=r, world_size=2) for r in (0, 1))
    assert len(r0) == len(r1)
    y = data[1]
    for t, (a, b) in enumerate(zip(r0, r1, strict=True)):
        assert not set(a) & set(b)
        if t < 4:
            assert set(y[a]) | set(y[b]) <= {0, 1, 2, 3}


def test_a_walk_order_walks_inside_the_task(data):
    _, y, _index, _ = data
    cur = Curriculum((Stage(Task(classes=(0, 1, 2), data_order="walk"), 20), Stage(Task())))
    s = _sampler(data, cur)
    batches = [s.batch_at(t) for t in range(20)]
    assert all(set(y[b]) <= {0, 1, 2} and len(b) == 32 for b in batches)
    shuffled = _sampler(data, Curriculum((Stage(Task(classes=(0, 1, 2)), 20), Stage(Task()))))

    def hom(bs):
        return np.mean([np.mean(y[b][:, None] == y[b][None, :]) for b in bs])

    assert hom(batches) > hom([shuffled.batch_at(t) for t in range(20)])


def test_works_in_a_dataloader_with_workers(data):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    x, y, _, _ = data
    cur = Curriculum.pacing("exp", steps=30, step=5)
    s = _sampler(data, cur)
    ds = TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
    got = [yb.tolist() for _, yb in DataLoader(ds, batch_sampler=s, num_workers=2)]
    assert got == [y[b].tolist() for b in _sampler(data, cur)]


# ----------------------------------------------------------------------------- the bandit


def test_difficulty_bands_split_each_class_evenly(data):
    _, y, _, scores = data
    bands = difficulty_bands(y, rank_items(scores, "easy"), 4)
    assert np.bincount(bands).tolist() == [150] * 4
    for c in range(10):
        assert np.bincount(bands[y == c]).tolist() == [15] * 4
    assert scores[bands == 0].mean() < scores[bands == 3].mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bandit_learns_to_prefer_the_task_that_pays_and_the_control_does_not(data, seed):
    x, y, _, scores = data
    bands = difficulty_bands(y, rank_items(scores, "easy"), 4)
    ti = task_index(x, bands)

    def share_of_band_2(policy):
        s = task_bandit_sampler(ti, 32, policy=policy, num_batches=600, seed=seed)
        picks = []
        for b in s:
            band = int(np.bincount(bands[b]).argmax())
            picks.append(band)
            s.report(1.0 if band == 2 else 0.0)
        return np.mean(np.array(picks[300:]) == 2)

    assert share_of_band_2("exp3s") > 0.45 > 0.35 > share_of_band_2("uniform") > 0.15


def test_the_bandit_resumes_exactly(data):
    x, y, _, scores = data
    bands = difficulty_bands(y, rank_items(scores, "easy"), 3)
    ti = task_index(x, bands)

    def run(stop=None, state=None):
        s = task_bandit_sampler(ti, 32, num_batches=40, seed=5)
        if state is not None:
            s.load_state_dict(state)
        out = []
        for i, b in enumerate(s):
            out.append(b)
            s.report(float(np.mean(bands[b] == 1)))
            if stop is not None and i + 1 == stop:
                return out, s.state_dict()
        return out, None

    full, _ = run()
    head, state = run(stop=15)
    tail, _ = run(state=state)
    assert head + tail == full


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "make,words",
    [
        (lambda: Curriculum.pacing("exp", steps=100, start=0.0), "start"),
        (lambda: Curriculum.pacing("exp", steps=100, inc=1.0), "inc"),
        (lambda: Curriculum.pacing("cosine", steps=100), "pacing should be one of"),
        (lambda: Curriculum.pacing("linear", steps=1), "steps"),
        (lambda: Stage(Task(), steps=0), "stage steps"),
        (lambda: Task(share=1.5), "share"),
        (lambda: Task(classes=()), "no items"),
        (lambda: Task(classes=(1,), groups=2), "not both"),
        (lambda: Task(data_order="sorted"), "data_order"),
        (lambda: Curriculum((), order="easy"), "at least one stage"),
        (lambda: Curriculum((Stage(Task()),), order="hardest"), "order"),
    ],
)
def test_bad_values_are_refused_naming_them(make, words):
    with pytest.raises(InputError, match=words):
        make()


@pytest.mark.parametrize(
    "name,text,words",
    [
        ("a.json", "{not json", "not valid JSON"),
        ("a.toml", "stages = [", "not valid TOML"),
        ("a.json", '{"stages": [{"steps": 5, "colour": 1}]}', "unknown key 'colour'"),
        ("a.json", '{"stages": [{"steps": 0}]}', "stage 0"),
        ("a.json", '{"pacing": {"kind": "exp", "steps": 10}, "stages": []}', "exactly one"),
        ("a.json", '{"pacing": {"steps": 10}}', "needs kind"),
        ("a.json", '{"pacing": {"kind": "exp", "steps": 10, "start": 2}}', "start"),
        ("a.json", '{"speed": 1, "stages": [{}]}', "unknown key 'speed'"),
        ("a.toml", '[pacing]\nkind = "exp"\n', "needs steps = N"),
        ("a.toml", '[hierarchy]\nlevel = "parent"\ngroups = 5\n', "steps = N"),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_the_fix(tmp_path, name, text, words):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError, match=words) as e:
        Curriculum.load(p)
    assert str(p) in str(e.value)


def test_a_missing_file_is_refused():
    with pytest.raises(InputError, match="does not exist"):
        Curriculum.load("/no/such/curriculum.toml")


@pytest.mark.parametrize(
    "task,words",
    [
        (Task(classes=(3, 42)), "classes \\[42\\]"),
        (Task(groups=2, level="nope"), "level 'nope'"),
        (Task(groups=2, level="labels"), "coarser"),
        (Task(groups=9, level="parent"), "groups <= 5"),
        (Task(classes=(0,)), "fewer than batch_size"),
    ],
)
def test_tasks_the_index_cannot_hold_are_refused(data, task, words):
    cur = Curriculum((Stage(task, 5), Stage(Task())))
    with pytest.raises(InputError, match=words):
        _sampler(data, cur, rank=0, world_size=2)  # a pool needs 2 x 32 items
