"""A hardware report as a CSV table: one row per image, both <Z> vectors (JSON is the report itself)."""

from __future__ import annotations

import csv
import io


def report_table(report: dict) -> tuple[list[str], list[list]]:
    """Header and rows: path, truth, simulated and hardware class, agreement, then z_sim_i and z_hw_i."""
    n = len(report["images"][0]["z_simulated"]) if report["images"] else 0
    header = (["path", "truth", "simulated", "hardware", "agree"]
              + [f"z_sim_{i}" for i in range(n)] + [f"z_hw_{i}" for i in range(n)])
    rows = [[r["path"], r["truth"] or "", r["simulated"], r["hardware"], int(r["simulated"] == r["hardware"]),
             *r["z_simulated"], *r["z_hardware"]] for r in report["images"]]
    return header, rows


def report_csv(report: dict) -> str:
    """The per-image table as CSV text."""
    header, rows = report_table(report)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
