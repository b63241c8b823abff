"""``xlm-onnx bulk``'s progress: rows, rows/s, time left and error rows; redrawn on a terminal,
a log line every ``log_every`` seconds (and at the end) elsewhere. A fake clock drives it."""

from __future__ import annotations

import io

from xlm_onnx.bulk.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_log_lines_come_every_interval_and_at_the_end():
    """The first answers come after 30 s of start-up; then 500 rows a second."""
    clock, stream = Clock(), io.StringIO()
    progress = Progress(20_500, terminal=False, log_every=10, stream=stream, clock=clock)
    clock.now += 30
    progress.update(500, 0)
    for second in range(1, 41):  # one error every 1,000 rows
        clock.now += 1
        progress.update(500 + 500 * second, second // 2)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "xlm-onnx: bulk: 500/20,500 rows (2%), first answers after 30.0 s, 0 error row(s)",
        "xlm-onnx: bulk: 5,500/20,500 rows (26%), 500.0 rows/s, 0:30 left, 5 error row(s)",
        "xlm-onnx: bulk: 10,500/20,500 rows (51%), 500.0 rows/s, 0:20 left, 10 error row(s)",
        "xlm-onnx: bulk: 15,500/20,500 rows (75%), 500.0 rows/s, 0:10 left, 15 error row(s)",
        "xlm-onnx: bulk: 20,500/20,500 rows (100%), 500.0 rows/s, done, 20 error row(s)"]


def test_a_terminal_line_is_redrawn_and_ended():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(3_600_000, terminal=True, stream=stream, clock=clock)
    clock.now += 2
    progress.update(1_000, 0)
    clock.now += 0.1
    progress.update(1_100, 0)  # within half a second of the last drawing: not drawn
    clock.now += 0.9
    progress.update(2_000, 1)
    progress.close()
    assert stream.getvalue() == ("\r\x1b[K1,000/3,600,000 rows (0%), first answers after 2.0 s, 0 error row(s)"
                                 "\r\x1b[K2,000/3,600,000 rows (0%), 1,000.0 rows/s, 59:58 left, 1 error row(s)\n")
