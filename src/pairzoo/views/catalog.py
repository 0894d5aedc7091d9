"""Views of a manifest: tables, DESCRIPTION.md, model cards, licence notice."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
from huggingface_hub import ModelCard, ModelCardData

from pairzoo.record.manifest import schema
from pairzoo.views.report import recipe_entries


def primary_metric(record: dict) -> tuple[str, float | None]:
    """The first metric of a model record: (id, value)."""
    for metric, measured in record["metrics"].items():
        return metric, measured["value"]
    return "", None


def model_rows(entries: dict) -> list[dict]:
    """One row per model: framework, architecture, parameters, metric, size of its files."""
    rows = []
    for model_id, record in sorted(entries["models"].items()):
        metric, value = primary_metric(record)
        rows.append(
            {
                "model": model_id,
                "framework": record["framework"],
                "architecture": record["architecture"],
                "parameters": record["parameters"],
                "metric": metric,
                "value": value,
                "files (KiB)": sum(f["bytes"] for f in record["files"].values()) / 1024,
                "initialised from": record["training"]["initialised_from"] or "",
            }
        )
    return rows


def pair_rows(entries: dict) -> list[dict]:
    """One row per pair: relation, structure, base and updated metric, change statistics."""
    models, codings = entries["models"], entries.get("codings", {})
    rows = []
    for pair_id, pair in sorted(entries["pairs"].items()):
        total = pair["stats"]["total"]
        samples = codings.get(pair_id, {}).get("samples", {})
        metric, base_value = primary_metric(models[pair["base"]])
        updated_metrics = models[pair["updated"]]["metrics"]
        if metric in updated_metrics:
            updated_value = updated_metrics[metric]["value"]
        else:  # another task (a detector on a classifier): the updated model's own metric
            updated_metric, updated_value = primary_metric(models[pair["updated"]])
            metric = f"{metric} → {updated_metric}"
        rows.append(
            {
                "pair": pair_id,
                "relation": pair["relation"],
                "structure": "changed" if pair["structure_change"]["changed"] else "same",
                "metric": metric,
                "base": base_value,
                "updated": updated_value,
                "changed %": 100.0 * total["changed_fraction"],
                "rel. L2": total["rel_l2"],
                "max abs Δ": total["max_abs_delta"],
                "NNC full B": samples.get("full", {}).get("bytes"),
                "NNC incremental B": samples.get("incremental", {}).get("bytes"),
            }
        )
    return rows


def model_table(entries: dict) -> pd.DataFrame:
    """`model_rows` as a table indexed by model id (empty, with its columns, when none)."""
    columns = ["model", "framework", "architecture", "parameters", "metric", "value",
               "files (KiB)", "initialised from"]  # fmt: skip
    return pd.DataFrame(model_rows(entries), columns=columns).set_index("model")


def pair_table(entries: dict, recipe: str | None = None) -> pd.DataFrame:
    """`pair_rows` as a table indexed by pair id, optionally only one recipe's pairs.

    Metrics measured on both models of a pair (such as forgetting) add two columns each.
    """
    if recipe is not None:
        entries = recipe_entries(entries, recipe)
    columns = ["pair", "relation", "structure", "metric", "base", "updated", "changed %",
               "rel. L2", "max abs Δ", "NNC full B", "NNC incremental B"]  # fmt: skip
    table = pd.DataFrame(pair_rows(entries), columns=columns).set_index("pair")
    for pair_id, pair in entries["pairs"].items():
        for metric, value in pair.get("metrics", {}).items():
            table.loc[pair_id, f"{metric} base"] = value["base"]
            table.loc[pair_id, f"{metric} updated"] = value["updated"]
    return table


def _by_recipe(entries: dict, kind: str) -> dict[str, dict[str, dict]]:
    grouped: dict[str, dict[str, dict]] = defaultdict(dict)
    for entry_id, entry in sorted(entries[kind].items()):
        grouped[entry["recipe"]][entry_id] = entry
    return grouped


def _metric_text(entries: dict, record: dict) -> str:
    parts = []
    for metric, measured in record["metrics"].items():
        unit = entries["metrics"][metric]["unit"]
        only = f", classes {', '.join(measured['classes'])} only" if "classes" in measured else ""
        parts.append(
            f"{entries['metrics'][metric]['name']} {measured['value']:.4g}{unit} "
            f"({measured['dataset']} {measured['split']}{only})"
        )
    return "; ".join(parts)


def description_md(entries: dict) -> str:
    """DESCRIPTION.md of a test-data set: scenarios, relations to the base, data, metrics."""
    models, pairs = entries["models"], entries["pairs"]
    lines = [
        f"# pairzoo test data ({entries['profile']} profile)",
        "",
        f"{len(models)} models and {len(pairs)} base/updated pairs. Every model is given as ONNX "
        "(its initializers carry the framework's tensor names, or the manifest maps them to these) "
        "and in its framework's format; "
        "`manifest.json` holds every detail below in machine-readable form, `SHA256SUMS` the "
        "checksum of every file, `LICENCE-NOTICE.md` the licences, `cards/` one card per model.",
        "",
        "## Scenarios: how the updated models relate to their bases",
    ]
    model_groups = _by_recipe(entries, "models")
    for recipe, recipe_pairs in _by_recipe(entries, "pairs").items():
        lines += ["", f"### {recipe}", ""]
        for pair_id, pair in recipe_pairs.items():
            structure = (
                "structure changed" if pair["structure_change"]["changed"] else "same structure"
            )
            rel = pair["stats"]["total"]["rel_l2"]
            change = f"relative L2 change {rel:.3g}" if rel is not None else "base norm zero"
            lines.append(
                f"- `{pair_id}`: {pair['use_case']} ({pair['relation']}); "
                f"`{pair['base']}` → `{pair['updated']}`, {structure}, {change}. "
                f"{pair.get('description', '')}".rstrip()
            )
        trained = model_groups.get(recipe, {})
        if trained:
            lines += ["", "Models:", ""]
            lines += [
                f"- `{m}`: {r.get('description') or r['architecture']}; {_metric_text(entries, r)}"
                for m, r in trained.items()
            ]
    lines += ["", "## Datasets", ""]
    for dataset_id, dataset in sorted(entries["datasets"].items()):
        splits = ", ".join(
            f"{k}: {v['size']} ({v['description']})" for k, v in dataset["splits"].items()
        )
        lines.append(
            f"- **{dataset['name']}** (`{dataset_id}`). Source: {dataset['source']}. "
            f"Reference: {dataset['citation']}. Licence: {dataset['licence']}. "
            f"Splits: {splits}."
        )
    lines += ["", "## Metrics", ""]
    for metric_id, metric in sorted(entries["metrics"].items()):
        direction = "higher is better" if metric["higher_is_better"] else "lower is better"
        unit = f"{metric['unit']}, " if metric["unit"] else ""  # empty: a pure number
        lines.append(
            f"- `{metric_id}`, {metric['name']} ({unit}{direction}): {metric['definition']}."
        )
    compressed = [(m, r["compression"]) for m, r in sorted(models.items()) if "compression" in r]
    if compressed:
        lines += ["", "## Models that are compressed variants", ""]
        lines += [f"- `{m}`: {method}" for m, method in compressed]
    if entries.get("codings"):
        lines += ["", "## Compressed samples", "", _codings_text(entries["codings"])]
    return "\n".join(lines) + "\n"


def _codings_text(codings: dict) -> str:
    lines = []
    for pair_id, coding in sorted(codings.items()):
        samples = []
        for name, sample in sorted(coding["samples"].items()):
            flags = ", ".join(f"{k}={v}" for k, v in sorted(sample["settings"].items()))
            files = ", ".join(f"`{f['path']}`" for f in sample["files"].values())
            samples.append(
                f"{name} ({sample['method']}; {flags}): {sample['bytes']} bytes, "
                f"{sample['bits_per_parameter']:.3g} bit/parameter, {coding['metric']} "
                f"{sample['value']:.4g} ({sample['change']:+.2f}); files {files}"
            )
        lines.append(
            f"- `{pair_id}`, coded with {coding['codec']} {coding['codec_version']} at "
            f'the operating point "{coding["operating_point"]}": ' + "; ".join(samples)
        )
    return "\n".join(lines)


# The Hugging Face hub's base_model_relation of an updated model, by the pair's relation.
HUB_RELATIONS = {
    "lora-adapter": "adapter",
    "lora-merged": "finetune",  # the hub's "merge" means several models merged into one
    "compression-rate": "quantized",
}
# The hub's pipeline_tag, by a model's first metric.
PIPELINE_TAGS = {
    "top1": "image-classification",
    "map50": "object-detection",
    "psnr": "image-to-image",
    "next-token-top1": "text-generation",
    "perplexity": "text-generation",
}


def card_data(entries: dict, model_id: str) -> ModelCardData:
    """The card metadata that the hub's model tree reads, from the manifest's records.

    Base model and relation, licence, datasets, pipeline tag, library and tags.
    """
    record = entries["models"][model_id]
    training = record["training"]
    pairs = [p for _, p in sorted(entries["pairs"].items()) if p["updated"] == model_id]
    base = training["initialised_from"] or (pairs[0]["base"] if pairs else None)
    relation = None
    if base is not None:
        relations = [p["relation"] for p in pairs if p["base"] == base] or [None]
        relation = HUB_RELATIONS.get(relations[0], "finetune")
        base_dtype = entries["models"].get(base, {}).get("dtype", "float32")
        if "compression" in record or record.get("dtype", "float32") != base_dtype:
            relation = "quantized"  # a compressed variant, or the base in another precision
    metric, _ = primary_metric(record)
    adapter = any(p["relation"] == "lora-adapter" for p in pairs)
    library = "peft" if adapter else {"pytorch": "pytorch", "keras": "keras"}[record["framework"]]
    datasets = sorted({training["dataset"], *(m["dataset"] for m in record["metrics"].values())})
    return ModelCardData(
        base_model=base,
        base_model_relation=relation,
        license="apache-2.0",
        datasets=datasets,
        pipeline_tag=PIPELINE_TAGS.get(metric),
        library_name=library,
        tags=["pairzoo", record["recipe"], record["architecture"]],
    )


CARD_TEMPLATE = "---\n{{ card_data }}\n---\n\n{{ body }}"


def model_card(entries: dict, model_id: str) -> str:
    """A short card for one model: the hub's metadata, what it is, training, metrics, files."""
    body = _card_body(entries, model_id)
    card = ModelCard.from_template(
        card_data(entries, model_id), template_str=CARD_TEMPLATE, body=body
    )
    return str(card)


def _card_body(entries: dict, model_id: str) -> str:
    record = entries["models"][model_id]
    training = record["training"]
    subset = training["subset"]
    config = ", ".join(f"{k}={v}" for k, v in sorted(training["config"].items()))
    files = "\n".join(
        f"- {kind}: `{f['path']}` ({f['bytes']} bytes, sha256 `{f['sha256']}`)"
        for kind, f in sorted(record["files"].items())
    )
    start = training["initialised_from"] or "a fresh initialisation"
    samples = "token windows" if len(record["input_shape"]) == 1 else "images"
    preprocessing = entries["datasets"][training["dataset"]]["preprocessing"]
    counted = schema()["$defs"]["model"]["properties"]["parameters"]["description"]
    return "\n".join(
        [
            f"# {model_id}",
            "",
            f"{record.get('description') or record['architecture']}. "
            f"Framework: {record['framework']} {record['framework_version']}; "
            f"architecture `{record['architecture']}` with {record['parameters']:,} parameters "
            f"({counted}).",
            "",
            f"Input: {preprocessing['layout']}, each {record['input_shape']}: "
            f"{preprocessing['description']}.{_slots_text(record, training['dataset'])}",
            "",
            f"Trained from {start} on {subset['size']} {samples} ({subset['fraction']:.0%}, seed "
            f"{subset['seed']}) of the {training['split']} split of `{training['dataset']}`; "
            f"{config}.",
            "",
            f"Metrics: {_metric_text(entries, record)}. {_test_split_text(entries, record)}",
            "",
            "Files:",
            "",
            files,
            "",
            f"Licence: {record['licence']}.",
            "",
        ]
    )


def _slots_text(record: dict, dataset: str) -> str:
    if not record["classes"]:
        return ""
    return (
        f" Output slots in order: {', '.join(record['classes'])} (slot i predicts the class named "
        f"classes[i] among `{dataset}`'s classes)."
    )


def _test_split_text(entries: dict, record: dict) -> str:
    measured = sorted({(m["dataset"], m["split"]) for m in record["metrics"].values()})
    splits = [(d, s, entries["datasets"][d]["splits"][s]) for d, s in measured]
    return " ".join(
        f"The {s} split of `{d}` ({split['size']} samples): {split['description']}."
        for d, s, split in splits
    )


def licence_notice(entries: dict) -> str:
    """LICENCE-NOTICE.md: the licence of every dataset and model."""
    lines = ["# Licences and copyright", "", "## Datasets", ""]
    lines += [
        f"- {d['name']} (`{k}`): {d['licence']}. {d['citation']}."
        for k, d in sorted(entries["datasets"].items())
    ]
    lines += ["", "## Models", ""]
    lines += [f"- `{k}`: {r['licence']}." for k, r in sorted(entries["models"].items())]
    return "\n".join(lines) + "\n"
