"""A recipe's own relations, metrics and datasets: declared when it opens its writer.

Built-in names need no declaration. A declared name that is built-in must carry the built-in
definition; a name neither built-in nor declared is refused before any model is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pairzoo.data.sets import DatasetInfo
from pairzoo.errors import PairzooError
from pairzoo.record.manifest import RELATIONS
from pairzoo.record.metrics import METRICS, Metric

NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass(frozen=True)
class Relation:
    """A relation of base and updated model: its name and a one-line description (the use case)."""

    name: str
    description: str


def _check_name(kind: str, name: str) -> None:
    if not NAME.match(name):
        raise PairzooError(f"{kind} name {name!r}: lower-case letters, digits, '.' and '-' only")


def _relation(relation: str | Relation) -> tuple[str, str]:
    """A relation named (built-in) or declared, as name and description."""
    if isinstance(relation, str):
        if relation not in RELATIONS:
            raise PairzooError(
                f"unknown relation {relation!r}: neither built-in nor declared; known are "
                f"{', '.join(RELATIONS)}"
            )
        return relation, RELATIONS[relation]
    _check_name("relation", relation.name)
    description = relation.description.strip()
    if not description or "\n" in description:
        raise PairzooError(f"relation {relation.name!r}: describe it in one line")
    builtin = RELATIONS.get(relation.name, description)
    if builtin != description:
        raise PairzooError(
            f"relation {relation.name!r} is built-in as {builtin!r}: declare yours under another "
            "name"
        )
    return relation.name, description


def _metric(name: str, metric: Metric) -> Metric:
    _check_name("metric", name)
    if metric.scorer is not None or metric.detection_scorer is not None:
        raise PairzooError(f"metric {name!r}: a declared metric has no scorer")
    builtin = METRICS.get(name)
    if builtin is not None and builtin.record() != metric.record():
        raise PairzooError(
            f"metric {name!r} is built-in with another definition: declare yours under another id"
        )
    return metric


def _builtin_dataset(dataset_id: str) -> bool:
    """Whether `data.loading.load_by_id` knows `dataset_id`."""
    from pairzoo.data.loading import loads

    return loads(dataset_id)


def _dataset(info: DatasetInfo) -> str:
    _check_name("dataset", info.id)
    if _builtin_dataset(info.id):
        raise PairzooError(
            f"dataset {info.id!r} is built-in (pairzoo loads it): declare yours under another id"
        )
    return info.id


@dataclass(frozen=True)
class Declarations:
    """The relations a writer's pairs have, and a recipe's own metrics and datasets."""

    relations: dict[str, str]  # name → description; all built-in ones where none were named
    metrics: dict[str, Metric]  # the recipe's own, by id
    datasets: tuple[str, ...]  # ids of the recipe's own datasets

    @classmethod
    def of(
        cls,
        relations: Iterable[str | Relation] | None = None,
        metrics: Mapping[str, Metric] | None = None,
        datasets: Sequence[DatasetInfo] = (),
    ) -> Declarations:
        """Check the declarations; `relations` None: every built-in relation, nothing declared."""
        named = dict(RELATIONS) if relations is None else dict(map(_relation, relations))
        own = {k: _metric(k, m) for k, m in (metrics or {}).items()}
        return cls(named, own, tuple(_dataset(info) for info in datasets))

    def record(self) -> dict:
        """The manifest's `declared` entry of the recipe: only what is not built-in."""
        relations = {k: v for k, v in self.relations.items() if k not in RELATIONS}
        metrics = sorted(k for k in self.metrics if k not in METRICS)
        found = {"relations": relations, "metrics": metrics, "datasets": sorted(self.datasets)}
        return {kind: names for kind, names in found.items() if names}

    def check_dataset(self, dataset_id: str) -> None:
        """Where the recipe declared datasets: refuse one neither built-in nor declared."""
        if self.datasets and dataset_id not in self.datasets and not _builtin_dataset(dataset_id):
            raise PairzooError(
                f"unknown dataset {dataset_id!r}: neither built-in nor declared; declared are "
                f"{', '.join(self.datasets)}"
            )

    def known_metrics(self) -> dict[str, Metric]:
        """Every metric a writer may record: built-in and declared."""
        return {**METRICS, **self.metrics}


def _declared_relations(entries: dict) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Each recipe's known relations (built-in and its own), and the declarations refused."""
    known, problems, seen = {}, [], dict(RELATIONS)
    for recipe, own in sorted(entries.get("declared", {}).items()):
        for name, description in sorted(own.get("relations", {}).items()):
            if seen.setdefault(name, description) != description:
                builtin = "built-in" if name in RELATIONS else "declared"
                problems.append(
                    f"recipe {recipe}: relation {name!r} is {builtin} as {seen[name]!r}, "
                    f"not {description!r}"
                )
        known[recipe] = {**RELATIONS, **own.get("relations", {})}
    return known, problems


def relations(entries: dict) -> dict[str, str]:
    """Every relation a manifest's pairs may have: built-in, or declared by its recipes."""
    declared = entries.get("declared", {}).values()
    return {**{n: d for own in declared for n, d in own.get("relations", {}).items()}, **RELATIONS}


def problems(entries: dict) -> list[str]:
    """Declarations that collide with built-in names, and pairs of an unknown relation."""
    known, found = _declared_relations(entries)
    for recipe, own in sorted(entries.get("declared", {}).items()):
        for metric in own.get("metrics", []):
            defined = entries["metrics"].get(metric)
            if defined is None:
                found.append(f"recipe {recipe}: declared metric {metric!r} undefined")
            elif metric in METRICS and METRICS[metric].record() != defined:
                found.append(f"recipe {recipe}: metric {metric!r} is built-in, defined otherwise")
        for dataset in own.get("datasets", []):
            if dataset not in entries["datasets"]:
                found.append(f"recipe {recipe}: declared dataset {dataset!r} undefined")
            elif _builtin_dataset(dataset):
                found.append(f"recipe {recipe}: dataset {dataset!r} is built-in, not its own")
    for pair_id, pair in sorted(entries["pairs"].items()):
        relations = known.get(pair["recipe"], RELATIONS)
        relation = pair["relation"]
        if relation not in relations:
            found.append(f"pair {pair_id}: relation {relation!r} neither built-in nor declared")
        elif pair["use_case"] != relations[relation]:
            found.append(f"pair {pair_id}: use case is not the description of {relation!r}")
    return found


def clashes(entries: dict, recipe: str, own: Declarations) -> list[str]:
    """The names `own` declares that another recipe of the folder declared otherwise."""
    found = []
    for other, theirs in sorted(entries.get("declared", {}).items()):
        if other == recipe:
            continue
        for name, description in sorted(theirs.get("relations", {}).items()):
            if own.relations.get(name, description) != description:
                found.append(f"relation {name!r} is declared by {other} as {description!r}")
        for metric in sorted(set(theirs.get("metrics", [])) & set(own.metrics)):
            if own.metrics[metric].record() != entries["metrics"].get(metric):
                found.append(f"metric {metric!r} is declared by {other}, defined otherwise")
    return found
