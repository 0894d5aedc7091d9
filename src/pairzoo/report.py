"""Tables and per-layer series for the book pages, read from a manifest."""

from __future__ import annotations

import pandas as pd


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


def layer_change(pair: dict) -> dict[str, float]:
    """‖Δ‖/‖base‖ per tensor, reshaped tensors measured on their corresponding block."""
    tensors = {**pair["stats"]["tensors"]}
    tensors.update({k: v["change"] for k, v in pair.get("correspondence", {}).items()})
    return {name: change["rel_l2"] for name, change in tensors.items()}
