"""Reading JSON-lines files for `msgworker enqueue --file` and `dlq import` (worker/cli/enqueue.py),
in this process: every bad line named by its number, an unreadable file refused with its reason."""

from __future__ import annotations

from worker.cli.enqueue import read_json_file, read_json_lines, refuse_bad_lines
from worker.cli.exits import EXIT_USAGE


def test_good_lines_keep_their_numbers_and_blank_lines_are_skipped():
    """Blank lines are not items, but still count in the numbering of the lines after them."""
    items, problems = read_json_lines(['{"a": 1}\n', "\n", "[2]\n"])
    assert (items, problems) == ([(1, {"a": 1}), (3, [2])], [])


def test_each_bad_line_is_named_and_the_good_ones_still_read():
    """A line that is not JSON and one nested too deeply: one problem each, by line number."""
    items, problems = read_json_lines(["{oops\n", "[" * 100_000 + "\n", "1\n"])
    assert items == [(3, 1)]
    assert [problem.split(":")[0] for problem in problems] == ["line 1", "line 2"]
    assert problems[1] == "line 2: nested too deeply"


def test_a_missing_file_is_refused_with_its_reason(tmp_path, capsys):
    """No such file: nothing read, and stderr says why and what was not done."""
    assert read_json_file(str(tmp_path / "absent.jsonl"), refused="nothing imported") is None
    assert capsys.readouterr().err.endswith(
        "absent.jsonl: No such file or directory, nothing imported\n"
    )


def test_a_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    """Bytes that are not UTF-8: refused as not text, not a traceback."""
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"body": "caf\xe9"}\n')
    assert read_json_file(str(path), refused="nothing enqueued") is None
    assert "not UTF-8 text, nothing enqueued" in capsys.readouterr().err


def test_bad_lines_are_reported_in_line_order(capsys):
    """Problems from several checks come out sorted by line number (10 after 9, not after 1)."""
    problems = ["line 10: to: missing", "line 9: not JSON (x)", "line 1: nested too deeply"]
    assert refuse_bad_lines(problems, refused="nothing enqueued") == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        "msgworker: 3 bad line(s), nothing enqueued:",
        "  line 1: nested too deeply",
        "  line 9: not JSON (x)",
        "  line 10: to: missing",
    ]
