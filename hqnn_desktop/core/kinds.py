"""The three compared models, by name (kept free of torch so the window can import it at once)."""

MODEL_KINDS = ("hqnn", "classical", "baseline")
MODEL_TITLES = {"hqnn": "HQNN", "classical": "Classical Matched", "baseline": "Baseline"}
