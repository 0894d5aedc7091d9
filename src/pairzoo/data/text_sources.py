"""Local text for the full profile: a folder of text files, or a dataset saved by `save_to_disk`.

A missing folder, column or split gives one error that names it and where it was looked for.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.data.text import Corpus
from pairzoo.errors import PairzooError

TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst")
SAVED_DATASET = ("dataset_dict.json", "state.json")  # a DatasetDict's or a Dataset's save_to_disk


def text_folder(folder: str | Path, name: str = "") -> Corpus:
    """The text files under `folder` (by suffix, recursively) as a corpus, by relative path."""
    root = Path(folder)
    if not root.is_dir():
        raise PairzooError(f"text folder {root} not found (expected files ending {TEXT_SUFFIXES})")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not files:
        raise PairzooError(f"no text files ending {TEXT_SUFFIXES} under {root}")
    documents = {p.relative_to(root).as_posix(): p.read_text("utf-8") for p in files}
    return Corpus(f"folder-{root.name}", name or f"text files of {root}", str(root), documents)


def saved_dataset(folder: str | Path, column: str = "text", split: str = "train") -> Corpus:
    """The `column` of a dataset written by `datasets.save_to_disk` (of a DatasetDict: `split`).

    Each non-empty row is a document, named by its row number; the id names the folder, the split
    and the column (`saved-<folder>[<split>:<column>]`).
    """
    import datasets

    root = Path(folder)
    if not any((root / name).is_file() for name in SAVED_DATASET):
        raise PairzooError(f"{root} is not a dataset saved by save_to_disk (no {SAVED_DATASET})")
    loaded = datasets.load_from_disk(str(root))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise PairzooError(f"split {split!r} not in the dataset at {root}: {sorted(loaded)}")
        loaded = loaded[split]
        where, chosen = f"{root} (split {split})", f"{split}:{column}"
    else:
        where, chosen = str(root), column
    if column not in loaded.column_names:
        raise PairzooError(
            f"column {column!r} not in the dataset at {where}: {loaded.column_names}"
        )
    texts = loaded[column]
    width = len(str(len(texts)))
    documents = {f"{i:0{width}d}": text for i, text in enumerate(texts) if text and text.strip()}
    if not documents:
        raise PairzooError(f"column {column!r} of the dataset at {where} holds no text")
    return Corpus(
        f"saved-{root.name}[{chosen}]",
        f"column {column} of the dataset at {where}",
        where,
        documents,
    )


def text_source(folder: str | Path, column: str = "text", split: str = "train") -> Corpus:
    """A saved dataset's `column` (`saved_dataset`) if `folder` holds one, else its text files."""
    if any((Path(folder) / name).is_file() for name in SAVED_DATASET):
        return saved_dataset(folder, column, split)
    return text_folder(folder)
