"""The memory measurements of ``graphwalk.benchmark`` (Linux /proc)."""

import numpy as np

from graphwalk.benchmark import measure, rss_mib, take_peak_rss_mib


def test_a_nested_measure_does_not_hide_the_enclosing_peak():
    assert take_peak_rss_mib() is not None  # the count restarted (Linux)
    r0 = rss_mib()
    big = np.ones(400 * 2**20 // 8)  # 400 MiB touched, then returned to the system
    del big
    with measure() as task:  # a task measured inside a stage restarts the count ...
        small = np.ones(50 * 2**20 // 8)
        del small
    assert task.peak_increase_mib is not None and 30 < task.peak_increase_mib < 300
    stage = take_peak_rss_mib()  # ... and the stage still sees its earlier 400 MiB
    assert stage is not None and stage >= r0 + 350
    again = take_peak_rss_mib()  # counted once: the next interval starts afresh
    assert again is not None and again < r0 + 300
