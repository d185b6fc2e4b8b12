"""The report draws the history and the latest comparison; the README gets the table."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from benchmarks.report import END, START, latest, markdown, read_history, render

ROWS = (
    "| l1 |",
    "| loader (1/chunk) |",
    "| loader (4/chunk) |",
    "| train (rnn) |",
    "| train (context_rnn) |",
    "| train (noop) |",
)


def test_render_writes_valid_plots_and_a_table(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    written = render(history, out)
    names = {path.name for path in written}
    assert names == {
        "history-l1.png", "history-loader.png", "history-train.png", "latest.png", "table.md",
    }  # fmt: skip
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            image = matplotlib.image.imread(path)
            assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    table = (out / "table.md").read_text()
    for row in ROWS:
        assert row in table
    assert "projected" in table and "4 node(s) x 16 cores" in table
    assert "Projection assumptions:" in table and "linear in cores" in table


def test_the_table_holds_the_latest_record_of_each_stage(history: Path) -> None:
    records = read_history(history)
    last = latest(records)
    assert list(last) == ["l1", "loader", "train"]
    assert all(record["suite"]["run"] == "run-1" for record in last.values())
    table = markdown(last)
    l1 = next(line for line in table.splitlines() if line.startswith("| l1 |"))
    cells = [cell.strip() for cell in l1.split("|")[1:-1]]
    assert cells[0] == "l1"
    assert cells[1].startswith("1.78 cubes/s")  # 16 cubes in 9 s
    assert cells[3] == "0.80"  # 8 MB of blocks / 10 MB fetched
    assert cells[5] == "3.00<br>4.00"  # per-cube stackstac, whole tiles
    assert cells[6].endswith("h (projected, compute-bound)")
    assert "6 of 18 days held" in cells[4]


def test_readme_table_between_markers(history: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n## Benchmarks\n\n{START}\nold\n{END}\n\nafter\n")
    render(history, tmp_path / "report", readme=readme)
    text = readme.read_text()
    assert "old" not in text and text.startswith("# Title") and text.endswith("after\n")
    inside = text.split(START)[1].split(END)[0]
    assert all(row in inside for row in ROWS)
    render(history, tmp_path / "report", readme=readme)  # again: the same text
    assert readme.read_text() == text


def test_readme_without_markers_is_refused(history: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    with pytest.raises(ValueError, match="markers"):
        render(history, tmp_path / "report", readme=readme)


def test_no_history_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cubestream bench"):
        read_history(tmp_path / "missing.jsonl")
