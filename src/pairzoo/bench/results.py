"""An evaluation's results: one row per pair and parameter point, as results.json and results.csv.

results.json follows `results.schema.json` (in this package); results.csv holds the same rows.
Both are written atomically after every pair, so a rerun into the same folder resumes.
"""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema

from pairzoo.atomic import write_text
from pairzoo.errors import PairzooError

RESULTS_JSON, RESULTS_CSV = "results.json", "results.csv"
FORMAT = "pairzoo-evaluate/1"
COLUMNS = (
    "pair", "relation", "recipe", "task", "codec", "params", "parameters", "bytes",
    "bits_per_parameter", "metric", "reference", "value", "delta", "nll", "agreement",
    "output_mse", "encode_s", "decode_s", "error",
)  # fmt: skip


@cache
def schema() -> dict:
    """The JSON Schema of results.json."""
    return json.loads(resources.files("pairzoo.bench").joinpath("results.schema.json").read_text())


def row_key(row: dict) -> tuple[str, str]:
    """What identifies a row: its pair and its parameters (as canonical JSON)."""
    return row["pair"], json.dumps(row["params"], sort_keys=True)


def load(folder: Path, codec: str, set_id: dict) -> list[dict]:
    """The rows an earlier run left in `folder` for the same codec and set; [] when none."""
    path = Path(folder) / RESULTS_JSON
    if not path.exists():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(document, schema())
    except (ValueError, jsonschema.ValidationError) as exc:
        message = getattr(exc, "message", str(exc))
        raise PairzooError(f"{path}: not a results file of pairzoo evaluate ({message})") from exc
    if document["codec"] != codec:
        raise PairzooError(f"{path}: holds results of codec {document['codec']!r}, not {codec!r}")
    if document["set"]["manifest_sha256"] != set_id["manifest_sha256"]:
        raise PairzooError(f"{path}: holds results for another test set ({document['set']})")
    return document["rows"]


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV (parameters as JSON), with a header of `COLUMNS`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "params": json.dumps(row["params"], sort_keys=True)})
    return out.getvalue()


def save(folder: Path, document: dict) -> None:
    """Write results.json (checked against the schema) and results.csv, each atomically."""
    jsonschema.validate(document, schema())
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / RESULTS_JSON, json.dumps(document, indent=1, sort_keys=True) + "\n")
    write_text(folder / RESULTS_CSV, csv_text(document["rows"]))
