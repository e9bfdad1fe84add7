"""Draw ``docs/bench-chart.png`` from ``bench/results/latest.json``: Sanji and the reference peer side by
side, records per second (push of new applications, push of status updates) and HTTP body bytes per
record. Needs matplotlib (``pip install -e '.[bench]'``)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import common

CHART = common.REPO / "docs" / "bench-chart.png"
RESULTS = common.REPO / "bench" / "results" / "latest.json"
SANJI, PEER = "#c0392b", "#7f8c8d"


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def draw(doc: dict[str, object], out: Path = CHART) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = doc.get("results", {})
    assert isinstance(results, dict)
    sanji, peer = results.get("sync", {}), results.get("peer", {})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)

    groups = [("push, new applications", "push_records_per_s"), ("push, 10% status updates", "update_records_per_s")]
    _bars(left, groups, sanji, peer, "records per second (higher is better)", fmt="{:,.0f}")
    left.set_title("Throughput over loopback HTTP")

    groups = [
        ("up, new", "push_bytes_up_per_record"),
        ("down, new", "push_bytes_down_per_record"),
        ("up, update", "update_bytes_up_per_record"),
        ("down, update", "update_bytes_down_per_record"),
    ]
    _bars(right, groups, sanji, peer, "HTTP body bytes per record (lower is better)", fmt="{:,.1f}")
    right.set_title("Bytes on the wire per record")

    machine = doc.get("machine", {})
    assert isinstance(machine, dict)
    fig.suptitle(
        f"Sanji vs PouchDB → pouchdb-server, {int(_num(sanji.get('records'))):,} applications, "
        f"{machine.get('cpus', '?')} CPUs, same machine and session ({doc.get('started', '')})",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _bars(ax, groups, sanji, peer, label: str, *, fmt: str) -> None:  # type: ignore[no-untyped-def]
    xs = range(len(groups))
    width = 0.38
    s_vals = [_num(sanji.get(key)) for _, key in groups]
    p_vals = [_num(peer.get(key)) for _, key in groups]
    bars_s = ax.bar([x - width / 2 for x in xs], s_vals, width, label="Sanji", color=SANJI)
    bars_p = ax.bar([x + width / 2 for x in xs], p_vals, width, label="PouchDB peer", color=PEER)
    for bars, vals in ((bars_s, s_vals), (bars_p, p_vals)):
        for bar, val in zip(bars, vals, strict=True):
            ax.annotate(
                fmt.format(val),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    ax.set_xticks(list(xs), [name for name, _ in groups], fontsize=8)
    ax.set_ylabel(label, fontsize=8)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)


def main(argv: list[str]) -> int:
    p = common.parser("chart", __doc__ or "")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--out", type=Path, default=CHART)
    args = p.parse_args(argv)
    out = draw(json.loads(args.results.read_text(encoding="utf-8")), args.out)
    common.emit({"chart": str(out)}, args.json)
    return 0
