"""Sampler specs (graphwalk.train.spec) and the resolved run configuration (graphwalk.train.config)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from graphwalk.errors import InputError
from graphwalk.train.config import TrainConfig, load_config
from graphwalk.train.spec import SamplerSpec, parse_spec, parse_specs

# ----------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("random", "random"),
        (" random ", "random"),
        ("er", "er"),
        ("er:k=4:mix=0.1", "er:k=4:mix=0.1"),
        ("er:mix=0.1:k=4", "er:k=4:mix=0.1"),
        ("knn:weighted:mix=0.25", "knn:mix=0.25:weighted"),
        (
            "knn:replacement:weighted:restart=0.1:mix=0.5",
            "knn:mix=0.5:restart=0.1:weighted:replacement",
        ),
        ("knn@body.act2:restart=0.1", "knn@body.act2:restart=0.1"),
        ("er:mix=0", "er"),  # the defaults are not spelled out
        ("er:mix=1e-1", "er:mix=0.1"),
        ("er:weighted=true", "er:weighted"),
        ("er:weighted=false", "er"),
        ("knn-clusters:k=0", "knn-clusters:k=0"),
    ],
)
def test_spec_canonical_text_and_round_trip(text, canonical):
    spec = parse_spec(text)
    assert str(spec) == canonical
    assert parse_spec(str(spec)) == spec
    assert parse_spec(canonical) == spec


def test_two_spellings_of_one_sampler_are_equal():
    a, b = parse_spec("er:mix=0.1:k=4"), parse_spec("er:k=4:mix=0.1")
    assert a == b
    assert hash(a) == hash(b)
    assert (a.graph, a.k, a.mix, a.restart, a.weighted, a.replacement) == (
        "er",
        4,
        0.1,
        0.0,
        False,
        False,
    )
    assert a.slug == b.slug
    assert parse_spec("random").is_random and not a.is_random
    assert parse_spec("random") == SamplerSpec()


def test_canonical_text_keeps_the_value():
    """``str(spec)`` is what config.json records and what names the run directory: it must give
    back the same sampler, not a rounded one."""
    spec = parse_spec("er:mix=0.1234567:restart=0.1000001")
    assert (spec.mix, spec.restart) == (0.1234567, 0.1000001)
    again = parse_spec(str(spec))
    assert (again.mix, again.restart) == (spec.mix, spec.restart)
    # two different samplers never share a canonical text (and so a run directory)
    assert str(parse_spec("er:mix=0.1")) != str(parse_spec("er:mix=0.1000001"))


@pytest.mark.parametrize(
    "text",
    [
        "random",
        "er",
        "er:k=4:mix=0.1",
        "knn:mix=0.25:weighted:replacement",
        "knn@body.act2:restart=0.1",
        "knn-clusters:k=2",
    ],
)
def test_slug_is_a_safe_file_name(text):
    slug = parse_spec(text).slug
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", slug)
    assert slug not in (".", "..")
    assert "/" not in slug and ":" not in slug and "=" not in slug and "@" not in slug


def test_different_specs_have_different_slugs():
    texts = [
        "random",
        "er",
        "er:k=4",
        "er:mix=0.1",
        "er:restart=0.1",
        "er:weighted",
        "er:replacement",
        "knn",
        "knn:mix=0.1",
        "knn@body.act1",
        "knn@body.act2",
    ]
    slugs = [parse_spec(t).slug for t in texts]
    assert len(set(slugs)) == len(slugs)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("er:foo=1", ["unknown option", "'foo'", "mix"]),
        ("er:mix=2", ["mix", "[0, 1]"]),
        ("er:mix=-0.1", ["mix", "[0, 1]"]),
        ("er:mix=nan", ["mix", "[0, 1]"]),
        ("er:restart=1.5", ["restart", "[0, 1]"]),
        ("er:mix=abc", ["mix", "a number in [0, 1]"]),
        ("er:mix=", ["needs a value"]),
        ("er:mix", ["needs a value"]),
        ("er:k=-1", ["k", "an integer >= 0"]),
        ("er:k=x", ["k", "an integer >= 0"]),
        ("er:k=1.5", ["k", "an integer >= 0"]),
        ("er:mix=0.1:mix=0.2", ["'mix'", "twice"]),
        ("er:weighted:weighted", ["'weighted'", "twice"]),
        ("random:mix=0.1", ["random", "no options"]),
        ("er:weighted=yes", ["weighted", "no value"]),
        ("er:replacement=2", ["replacement", "no value"]),
        ("er::mix=0.1", ["unknown option"]),
        ("e r", ["not a graph name"]),
        ("er/x", ["not a graph name"]),
    ],
)
def test_bad_spec_is_an_input_error_naming_it(text, words):
    with pytest.raises(InputError) as e:
        parse_spec(text)
    msg = str(e.value)
    assert repr(text) in msg  # names the spec as written
    for w in words:
        assert w in msg
    assert "\n" not in msg


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_spec_is_refused_with_the_grammar(text):
    with pytest.raises(InputError, match="empty sampler spec.*'random'"):
        parse_spec(text)


def test_spec_must_be_a_string():
    with pytest.raises(TypeError):
        parse_spec(3)  # type: ignore[arg-type]


def test_parse_specs_splits_on_commas_and_keeps_order():
    specs = parse_specs("random,er:mix=0.1:k=4,knn")
    assert [str(s) for s in specs] == ["random", "er:k=4:mix=0.1", "knn"]
    assert parse_specs(["knn", "random"]) == [parse_spec("knn"), parse_spec("random")]
    assert parse_specs("er") == [parse_spec("er")]


@pytest.mark.parametrize(
    "text", ["random,er,random", "er:k=4:mix=0.1,er:mix=0.1:k=4", "er,er:mix=0"]
)
def test_parse_specs_refuses_duplicates(text):
    with pytest.raises(InputError, match="listed twice"):
        parse_specs(text)


@pytest.mark.parametrize("text", ["random,,er", "random,", ""])
def test_parse_specs_refuses_empty_items(text):
    with pytest.raises(InputError, match="empty sampler spec"):
        parse_specs(text)


def test_parse_specs_error_names_the_bad_item():
    with pytest.raises(InputError, match="'er:mix=5'"):
        parse_specs("random,er:mix=5,knn")


def test_sampler_kwargs():
    kw = parse_spec("knn:mix=0.25:restart=0.1:weighted").sampler_kwargs()
    assert kw == {
        "graph": "knn",
        "mix": 0.25,
        "restart": 0.1,
        "weighted": True,
        "replacement": False,
    }
    assert parse_spec("er:k=3").sampler_kwargs()["k"] == 3
    with pytest.raises(InputError):
        parse_spec("random").sampler_kwargs()


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("dataset", "model", "optim"),
    [
        ("mnist1d", "mlp", ("adam", 1e-2, 0.0)),
        ("digits", "mlp", ("adam", 1e-2, 0.0)),
        ("cifar10", "cnn", ("sgd", 0.05, 5e-4)),
        ("cifar100", "cnn", ("sgd", 0.05, 5e-4)),
        ("mnist", "cnn", ("sgd", 0.05, 5e-4)),
    ],
)
def test_resolved_fills_the_models_defaults_per_dataset(dataset, model, optim):
    c = TrainConfig(dataset=dataset).resolved()
    assert c.model == model
    assert (c.optimizer, c.lr, c.weight_decay) == optim
    # given values win over the model's defaults
    d = TrainConfig(dataset=dataset, optimizer="sgd", lr=0.3, weight_decay=0.01).resolved()
    assert (d.optimizer, d.lr, d.weight_decay) == ("sgd", 0.3, 0.01)
    # resolving does not touch the original
    assert TrainConfig(dataset=dataset).model is None


def test_resolved_canonicalises_the_sampler_and_is_idempotent():
    c = TrainConfig(dataset="digits", sampler="er:mix=0.1:k=4").resolved()
    assert c.sampler == "er:k=4:mix=0.1"
    assert c.resolved() == c


def test_resolved_explicit_model():
    c = TrainConfig(dataset="mnist1d", model="cnn1d").resolved()
    assert (c.model, c.optimizer, c.lr) == ("cnn1d", "adam", 1e-2)
    c = TrainConfig(dataset="cifar10", model="resnet18").resolved()
    assert (c.model, c.optimizer) == ("resnet18", "sgd")


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("dataset", "imagenet", ["mnist1d", "digits", "cifar10", "cifar100", "mnist"]),
        ("model", "vgg", ["mlp", "cnn1d", "cnn", "resnet18"]),
        ("loss", "hinge", ["ce", "supcon"]),
        ("optimizer", "rmsprop", ["adam", "sgd"]),
        ("device", "tpu", ["auto", "cpu", "cuda"]),
        ("schedule", "step", ["cosine", "constant"]),
        ("classes", "fine", ["label", "superclass"]),
    ],
)
def test_unknown_names_list_the_valid_ones(field, value, valid):
    with pytest.raises(InputError) as e:
        TrainConfig(**{"dataset": "digits", field: value}).resolved()
    msg = str(e.value)
    assert repr(value) in msg
    for v in valid:
        assert v in msg


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"sampler": "er:mix=2"}, "er:mix=2"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"lr": 0.0}, "lr"),
        ({"label_noise": 1.5}, "label_noise"),
        ({"momentum": 1.0}, "momentum"),
        ({"classes": "superclass"}, "cifar100"),
        ({"refresh_every": 1}, "layers"),
        ({"layers": ["body.act1"]}, "random"),
        ({"layers": ["body.act1"], "sampler": "knn", "index": "x.gw"}, "--index"),
    ],
)
def test_bad_settings_are_refused(settings, match):
    with pytest.raises(InputError, match=re.escape(match)):
        TrainConfig(dataset="digits", **settings).resolved()


def test_config_json_round_trip(tmp_path):
    c = TrainConfig(
        dataset="digits",
        sampler="knn@body.act1:mix=0.25",
        layers=["body.act1"],
        refresh_every=2,
        label_noise=0.2,
        seed=7,
        eval_every=5,
    ).resolved()
    (tmp_path / "config.json").write_text(c.to_json())
    back = load_config(tmp_path)  # a run directory
    assert back == c
    assert back.resolved() == c
    assert load_config(tmp_path / "config.json") == c
    # the file is plain JSON with every setting
    d = json.loads((tmp_path / "config.json").read_text())
    assert set(d) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert d["model"] == "mlp" and d["optimizer"] == "adam"


def test_config_file_with_unknown_keys_is_refused(tmp_path):
    d = TrainConfig(dataset="digits").resolved().to_dict()
    d["learning_rate"] = 0.1
    p = tmp_path / "config.json"
    p.write_text(json.dumps(d))
    with pytest.raises(InputError, match="unknown settings learning_rate") as e:
        load_config(p)
    assert str(p) in str(e.value)
    assert "lr" in str(e.value)  # the valid names are listed


@pytest.mark.parametrize(
    ("text", "match"), [("{not json", "not a readable JSON"), ("[1, 2]", "JSON object")]
)
def test_config_file_that_is_not_a_config(tmp_path, text, match):
    p = tmp_path / "config.json"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        load_config(p)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nothing")
