"""``cubestream bench report``: the history as PNG plots and the latest comparison as Markdown.

From the history (:data:`benchmarks.suite.HISTORY`) it writes into ``out``:

- ``history-<stage>.png``: each row's measured rate and its ratio to the ceiling over time;
- ``latest.png``: the latest record of each stage, every row's ratio to its ceiling and to
  each peer (log scale; 1 is parity);
- ``table.md``: stage | measured rate | ceiling | ratio to ceiling | peer | ratio to peer |
  projected hours for the 12 TB workload, with the context of each record and the projection's
  assumptions.

With ``readme``, the table replaces the text between ``<!-- bench:start -->`` and
``<!-- bench:end -->`` in that file.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

__all__ = [
    "END",
    "HISTORY",
    "STAGES",
    "START",
    "latest",
    "markdown",
    "read_history",
    "render",
    "update_readme",
]

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
STAGES = ("l1", "loader", "train", "encoding")
"""The stages of the suite, in the order they run and are reported."""
HISTORY = Path(__file__).resolve().parent / "results" / "history.jsonl"
"""The history of the suite's records in the repository."""


def read_history(path: Path) -> list[dict[str, Any]]:
    """The records of a history file, in the order they were appended."""
    if not path.exists():
        raise FileNotFoundError(f"no benchmark history at {path}; run `cubestream bench` first")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record of each stage."""
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        found[record["stage"]] = record
    return {stage: found[stage] for stage in STAGES if stage in found}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table_rows(record: dict[str, Any]) -> list[str]:
    lines = []
    for row in record["rows"]:
        peers = row["peers"] or [{"text": "none", "ratio": None, "ratio_is": ""}]
        peer_text = "<br>".join(_cell(p["text"]) for p in peers)
        peer_ratio = "<br>".join("—" if p["ratio"] is None else f"{p['ratio']:.2f}" for p in peers)
        hours = f"{row['projected_hours']:.3g} h (projected, {row['projected_bound']}-bound)"
        lines.append(
            f"| {row['row']} | {_cell(row['measured']['text'])} | {_cell(row['ceiling']['text'])} "
            f"| {row['ratio_to_ceiling']:.2f} | {peer_text} | {peer_ratio} | {hours} |"
        )
    return lines


def _context_line(record: dict[str, Any]) -> str:
    machine, git = record["machine"], record["git"]
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    return (
        f"- {record['stage']}: {record['time']}, commit {git.get('commit')}{dirty}, preset "
        f"{record['suite']['preset']}, {machine['cpus_usable']} usable CPUs ({machine['cpu']}), "
        f"{machine['memory_gb']} GB, load average {machine['load_average']}"
    )


def markdown(records: dict[str, dict[str, Any]]) -> str:
    """The Markdown table of the latest records, their context and the projection's terms."""
    if not records:
        return "No benchmark records yet: run `cubestream bench`.\n"
    any_record = next(iter(records.values()))
    cluster = any_record["projection"]["cluster"]
    workload = any_record["projection"]["workload"]
    head = (
        f"Projected hours: {workload['name']} ({workload['tiles']} tiles, "
        f"{workload['cubes']:,} cubes, {workload['dates_per_tile']} dates, "
        f"{workload['total_bytes'] / 1e12:.1f} TB) on {cluster['nodes']} node(s) x "
        f"{cluster['cores_per_node']} cores, {cluster['gpus_per_node']} GPU(s) per node, "
        f"storage {cluster['storage_gbps']:g} GB/s, {cluster['epochs']} epoch(s). "
        "Every other figure is measured on the machine below, all stages of a run side by side."
    )
    lines = [
        head,
        "",
        "| stage | measured rate | ceiling | ratio to ceiling | peer | ratio to peer "
        "| projected hours (12 TB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for record in records.values():
        lines += _table_rows(record)
    lines += ["", "Ratios: to a ceiling, 1 is the ceiling; to a peer, above 1 is faster."]
    for record in records.values():
        for row in record["rows"][:1]:
            lines.append(f"- {record['stage']} ratio to ceiling: {row['ratio_to_ceiling_is']}")
    lines += ["", "Measured on:"]
    lines += [_context_line(record) for record in records.values()]
    lines += ["", "Projection assumptions:"]
    for record in records.values():
        for stage in record["projection"]["stages"]:
            line = f"- {stage['stage']}: " + "; ".join(stage["assumptions"])
            if line not in lines:
                lines.append(line)
    return "\n".join(lines) + "\n"


def _history_plot(stage: str, records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    figure, (rate, ratio) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    series: dict[str, list[tuple[dt.datetime, float, float, str]]] = {}
    for record in records:
        when = dt.datetime.fromisoformat(record["time"])
        for row in record["rows"]:
            measured = row["measured"]
            series.setdefault(row["row"], []).append(
                (when, measured["value"], row["ratio_to_ceiling"], measured["unit"])
            )
    for name, points in series.items():
        times = [p[0] for p in points]
        rate.plot(times, [p[1] for p in points], marker="o", label=f"{name} ({points[-1][3]})")
        ratio.plot(times, [p[2] for p in points], marker="o", label=name)
    rate.set_ylabel("measured rate")
    rate.set_yscale("log")
    rate.legend(fontsize="small")
    ratio.set_ylabel("ratio to ceiling")
    ratio.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ratio.set_xlabel("time (UTC)")
    rate.set_title(f"{stage}: history")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _latest_plot(records: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    labels, values = [], []
    for record in records.values():
        for row in record["rows"]:
            labels.append(f"{row['row']}: ceiling")
            values.append(row["ratio_to_ceiling"])
            for peer in row["peers"]:
                labels.append(f"{row['row']}: vs {peer['name']}")
                values.append(peer["ratio"])
    figure, axes = plt.subplots(figsize=(9, 0.35 * len(labels) + 1.5))
    positions = list(range(len(labels)))[::-1]
    colours = ["tab:blue" if label.endswith("ceiling") else "tab:orange" for label in labels]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, labels, fontsize="small")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xlabel("ratio (blue: cubestream / ceiling; orange: cubestream / peer)")
    axes.set_title("latest run: ratios to ceilings and peers")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def update_readme(readme: Path, table: str) -> None:
    """Replace the text between :data:`START` and :data:`END` in ``readme`` with ``table``."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} markers to put the table between")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    readme.write_text(f"{before}{START}\n{table}{END}{after}", encoding="utf-8")


def render(history: Path, out: Path, readme: Path | None = None) -> list[Path]:
    """Write the plots and the table of ``history`` into ``out``; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    records = read_history(history)
    last = latest(records)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stage in last:
        path = out / f"history-{stage}.png"
        _history_plot(stage, [r for r in records if r["stage"] == stage], path)
        written.append(path)
    if last:
        _latest_plot(last, out / "latest.png")
        written.append(out / "latest.png")
    table = markdown(last)
    (out / "table.md").write_text(table, encoding="utf-8")
    written.append(out / "table.md")
    if readme is not None:
        update_readme(readme, table)
    return written
