"""metrics.jsonl has one reader and one writer (graphwalk.train.metrics); a run killed mid-write
leaves a torn last line, which every reader skips."""

import json

import pytest

from graphwalk.errors import InputError
from graphwalk.train.metrics import METRICS, MetricsWriter, read_metrics
from graphwalk.train.metrics import write_tables as _write_tables


def _events():
    return [
        {"event": "step", "step": 1, "epoch": 0, "loss": 2.0, "sampler_us": 5.0, "homophily": 0.5},
        {"event": "eval", "step": 1, "epoch": 0, "test_acc": 0.3},
        {"event": "refresh", "step": 1, "epoch": 0, "seconds": 0.1},
        {"event": "future-kind", "step": 1},
        {"event": "step", "step": 2, "epoch": 0, "loss": 1.5, "sampler_us": 6.0, "homophily": None},
    ]


def test_what_the_writer_writes_the_reader_reads(tmp_path):
    w = MetricsWriter(tmp_path, enabled=True, purge_step=None)
    for e in _events():
        w.write(e)
    assert w.position() == (tmp_path / METRICS).stat().st_size
    w.close()
    m = read_metrics(tmp_path / METRICS)
    assert [e for _, e in m.events] == _events() and not m.truncated
    assert [e["step"] for e in m.of("step")] == [1, 2]
    assert [n for n, _ in m.numbered("eval")] == [2]
    assert MetricsWriter(tmp_path / "nowhere", enabled=False, purge_step=None).position() == 0


def test_a_torn_last_line_is_skipped_by_every_reader(tmp_path):
    text = "".join(json.dumps(e) + "\n" for e in _events()) + '{"event": "step", "st'
    (tmp_path / METRICS).write_text(text)
    m = read_metrics(tmp_path / METRICS)
    assert m.truncated and len(m.events) == 5
    _write_tables(tmp_path)  # the run's tables from the same reader: no error on the torn line
    assert (tmp_path / "steps.csv").read_text().count("\n") == 3  # header + 2 steps


def test_a_damaged_line_or_a_missing_file_is_named(tmp_path):
    lines = [json.dumps(e) for e in _events()]
    lines[1] = "{not json"
    (tmp_path / METRICS).write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"metrics.jsonl, line 2: not valid JSON"):
        read_metrics(tmp_path / METRICS)
    (tmp_path / METRICS).write_text('[1, 2]\n{"event": "step"}\n')
    with pytest.raises(InputError, match=r"line 1: expected a JSON object with an 'event'"):
        read_metrics(tmp_path / METRICS)
    with pytest.raises(InputError, match="is missing"):
        read_metrics(tmp_path / "nope" / METRICS)
