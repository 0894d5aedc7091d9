"""Tables, per-layer series and their figure for the book pages, read from a manifest."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure


def recipe_entries(entries: dict, recipe: str) -> dict:
    """The manifest with only `recipe`'s pairs."""
    pairs = {k: v for k, v in entries["pairs"].items() if v["recipe"] == recipe}
    return {**entries, "pairs": pairs}


def structure_table(entries: dict) -> pd.DataFrame:
    """One row per tensor added, removed or reshaped, with the block that continues the base."""
    rows = []
    for pair_id, pair in sorted(entries["pairs"].items()):
        change, blocks = pair["structure_change"], pair.get("correspondence", {})
        found = [(name, "added", "", "") for name in change["added"]]
        found += [(name, "removed", "", "") for name in change["removed"]]
        for name, shapes in change["reshaped"].items():
            block = blocks.get(name)
            where = ", ".join(f"{a}:{b}" for a, b in block["slices"]) if block else "?"
            found.append((name, "reshaped", f"{shapes['old']} → {shapes['new']}", f"[{where}]"))
        for name, kind, shapes, where in found or [("(none)", "no structure change", "", "")]:
            rows.append(
                {
                    "pair": pair_id,
                    "tensor": name,
                    "change": kind,
                    "shape base → updated": shapes,
                    "base = updated[…]": where,
                }
            )
    return pd.DataFrame(rows).set_index(["pair", "tensor"])


def model_files(entries: dict, recipe: str) -> pd.DataFrame:
    """Bytes of each file of `recipe`'s models, one column per kind (onnx, safetensors, …)."""
    files = {
        model_id.split("/", 1)[1]: {kind: file["bytes"] for kind, file in record["files"].items()}
        for model_id, record in entries["models"].items()
        if record["recipe"] == recipe
    }
    return pd.DataFrame.from_dict(files, orient="index")


def layer_change(pair: dict) -> dict[str, float]:
    """‖Δ‖/‖base‖ per tensor, reshaped tensors measured on their corresponding block."""
    tensors = {**pair["stats"]["tensors"]}
    tensors.update({k: v["change"] for k, v in pair.get("correspondence", {}).items()})
    return {name: change["rel_l2"] for name, change in tensors.items()}


def change_figure(entries: dict, updates: Sequence[str], title: str) -> Figure:
    """‖Δ‖/‖base‖ per tensor (`layer_change`), one line per pair whose updated model is named."""
    fig, ax = plt.subplots(figsize=(9, 3.5))
    for update in updates:
        pair = next(p for p in entries["pairs"].values() if p["updated"].endswith(f"/{update}"))
        change = layer_change(pair)
        ax.plot(list(change), list(change.values()), marker="o", label=update)
    ax.set_ylabel("‖Δ‖ / ‖base‖")
    ax.tick_params(axis="x", rotation=90)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig
