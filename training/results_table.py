"""Print the README's results tables from the records in training/results/.

    python training/results_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PAPER = {"pbc8": {"hqnn": "0.9869", "classical": "0.9854", "baseline": "n/a"}}
TITLES = {"hqnn": "HQNN", "classical": "Classical Matched", "baseline": "Baseline"}


def fmt(stat: dict) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def main() -> None:
    packs = [p for p in ("pbc8", "bci4") if (RESULTS / f"{p}.json").exists()]
    records = {p: json.loads((RESULTS / f"{p}.json").read_text()) for p in packs}
    print("| model | " + " | ".join(f"{p} val macro-F1 (3 seeds)" for p in packs)
          + " | paper, PBC 8 classes |")
    print("|---|" + "---|" * len(packs) + "---|")
    for kind in ("hqnn", "classical", "baseline"):
        cells = [fmt(records[p]["summary"][kind]["macro_f1"]) for p in packs]
        print(f"| {TITLES[kind]} | " + " | ".join(cells) + f" | {PAPER['pbc8'][kind]} |")
    print()
    for p in packs:
        r = records[p]
        extra = []
        s = r["summary"]["hqnn"]
        if "macro_f1_reencoded" in s:
            extra.append(f"HQNN on WebP-q80 re-encoded copies {fmt(s['macro_f1_reencoded'])}")
        if "check_macro_f1" in s:
            extra.append(f"HQNN on TEST_SIMPLE {fmt(s['check_macro_f1'])}")
        pvals = [f"{x['mcnemar_hqnn_vs_classical']['p_value']:.3g}" for x in r["seeds"]]
        ch = r["chosen"]
        layers = f"{ch['layers']} layer" + ("s" if ch["layers"] != 1 else "")
        print(f"- {p}: {ch['n_qubits']} qubits x {layers}, contrastive weight "
              f"{ch['contrastive_weight']}; McNemar HQNN vs Classical Matched p = {', '.join(pvals)} "
              f"(seeds {', '.join(str(x['seed']) for x in r['seeds'])})" + ("; " + "; ".join(extra) if extra else ""))
    print()
    for p in packs:
        print(f"Ablation {p} (validation macro-F1, seed 0: HQNN / Classical Matched / Baseline)\n")
        print("| qubits | layers | HQNN | Classical Matched | Baseline |")
        print("|---|---|---|---|---|")
        for row in records[p]["ablation"]:
            v = row["val_macro_f1"]
            print(f"| {row['n_qubits']} | {row['layers']} | {v['hqnn']:.4f} | {v['classical']:.4f} | {v['baseline']:.4f} |")
        c = records[p]["contrastive"]
        print(f"\nSupCon weight {c['weight']}: HQNN {c['val_macro_f1']['hqnn']:.4f} with, "
              f"{c['without']['hqnn']:.4f} without -> {'kept' if c['kept'] else 'not kept'}.\n")


if __name__ == "__main__":
    main()
