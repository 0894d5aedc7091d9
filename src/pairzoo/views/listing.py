"""What `pairzoo list` prints: a manifest's models and pairs, as text, JSON, CSV or Markdown."""

from __future__ import annotations

import csv
import io
import json

from pairzoo.errors import PairzooError
from pairzoo.record.declarations import relations
from pairzoo.views.catalog import pair_rows, primary_metric

CSV_COLUMNS = ["kind", "id", "recipe", "architecture", "parameters", "metric", "value", "unit",
               "relation", "base", "updated"]  # fmt: skip


def select(entries: dict, recipe: str | None = None, relation: str | None = None) -> dict:
    """Only `recipe`'s models and pairs; only pairs of `relation`, and their models.

    A recipe with nothing in the manifest, or a relation neither built-in nor declared, is an error.
    """
    models, pairs = entries["models"], entries["pairs"]
    if recipe is not None:
        recipes = sorted({r["recipe"] for r in [*models.values(), *pairs.values()]})
        if recipe not in recipes:
            raise PairzooError(f"no recipe {recipe!r} in the manifest; it has {', '.join(recipes)}")
        models = {k: r for k, r in models.items() if r["recipe"] == recipe}
        pairs = {k: p for k, p in pairs.items() if p["recipe"] == recipe}
    if relation is not None:
        known = relations(entries)
        if relation not in known:
            raise PairzooError(f"unknown relation {relation!r}; known are {', '.join(known)}")
        pairs = {k: p for k, p in pairs.items() if p["relation"] == relation}
        ends = {p[end] for p in pairs.values() for end in ("base", "updated")}
        models = {k: r for k, r in models.items() if k in ends}
    return {**entries, "models": models, "pairs": pairs}


def model_records(entries: dict) -> list[dict]:
    """One record per model: id, recipe, architecture, parameters, its first metric and unit."""
    records = []
    for model_id, record in sorted(entries["models"].items()):
        metric, value = primary_metric(record)
        records.append(
            {
                "id": model_id,
                "recipe": record["recipe"],
                "architecture": record["architecture"],
                "parameters": record["parameters"],
                "metric": metric,
                "value": value,
                "unit": entries["metrics"][metric]["unit"] if metric else "",
            }
        )
    return records


def pair_records(entries: dict) -> list[dict]:
    """One record per pair: id, recipe, relation, base and updated model."""
    return [
        {
            "id": pair_id,
            "recipe": pair["recipe"],
            "relation": pair["relation"],
            "base": pair["base"],
            "updated": pair["updated"],
        }
        for pair_id, pair in sorted(entries["pairs"].items())
    ]


def _aligned(rows: list[list[str]], right: set[int]) -> list[str]:
    """Rows of cells as lines of columns, each as wide as its widest cell."""
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    return [
        "  ".join(
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def text(entries: dict) -> str:
    """A line per model (architecture, parameters, first metric) and per pair (relation, ends)."""
    models, pairs = model_records(entries), pair_records(entries)
    width = max((len(r["id"]) for r in [*models, *pairs]), default=0)
    model_cells = [
        [
            "model",
            r["id"].ljust(width),
            r["architecture"],
            f"{r['parameters']:,d}",
            r["metric"],
            "" if r["value"] is None else f"{r['value']:.2f}",
            r["unit"],
        ]
        for r in models
    ]
    pair_cells = [
        ["pair ", r["id"].ljust(width), r["relation"], f"{r['base']} -> {r['updated']}"]
        for r in pairs
    ]
    lines = _aligned(model_cells, {3, 5}) if models else []
    lines += _aligned(pair_cells, set()) if pairs else []
    return "\n".join(lines) if lines else "(no models or pairs)"


def as_json(entries: dict) -> str:
    """`{"models": [...], "pairs": [...]}` of `model_records` and `pair_records`."""
    return json.dumps({"models": model_records(entries), "pairs": pair_records(entries)}, indent=2)


def as_csv(entries: dict) -> str:
    """Models and pairs as one CSV table; `kind` says which, a cell that does not apply is empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({"kind": "model", **r} for r in model_records(entries))
    writer.writerows({"kind": "pair", **r} for r in pair_records(entries))
    return out.getvalue().rstrip("\n")


def markdown(entries: dict) -> str:
    """The pair table (`catalog.pair_rows`) in Markdown, as the README shows it."""
    rows = pair_rows(entries)
    if not rows:
        return "(no pairs)"
    head = list(rows[0])

    def cell(value: object) -> str:
        if value is None:
            return "–"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(row[k]) for k in head) + " |" for row in rows]
    return "\n".join(lines)


FORMATS = {"text": text, "json": as_json, "csv": as_csv}  # `list`'s outputs of `select`'s entries
