"""The full profile's inputs read from local folders, never downloaded.

Models come from the Hugging Face hub cache (`HF_HUB_CACHE`, by default
~/.cache/huggingface/hub; layout `models--<org>--<name>/snapshots/<commit>/` with `refs/<revision>`
naming the commit), read with `local_files_only`; text comes from a folder of files or from a
dataset written by `datasets.save_to_disk`. A missing item gives one error that names it and where
it was looked for.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.data.text import Corpus
from pairzoo.errors import PairzooError
from pairzoo.hf_env import huggingface_hub, transformers
from pairzoo.models.pretrained import Pretrained

TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
SAVED_DATASET = ("dataset_dict.json", "state.json")  # a DatasetDict's or a Dataset's save_to_disk


def hub_cache(cache_dir: str | Path | None = None) -> Path:
    """The hub cache folder: `cache_dir`, else `HF_HUB_CACHE` (or its default)."""
    return Path(cache_dir or huggingface_hub.constants.HF_HUB_CACHE)


def hub_snapshot(repo_id: str, cache_dir: str | Path | None = None, revision: str = "main") -> Path:
    """The local snapshot folder of a hub model in the cache; nothing is downloaded."""
    cache = hub_cache(cache_dir)
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, cache_dir=str(cache), revision=revision, local_files_only=True
        )
    except (huggingface_hub.errors.LocalEntryNotFoundError, ValueError, OSError) as exc:
        expected = cache / f"models--{repo_id.replace('/', '--')}"
        raise PairzooError(
            f"model {repo_id!r} (revision {revision}) is not in the Hugging Face cache {cache}: "
            f"expected {expected}/refs/{revision} and snapshots/<commit>/ with config.json and "
            f"the weights (fetch it once elsewhere with `hf download {repo_id}`)"
        ) from exc
    return Path(folder)


def hub_pretrained(repo_id: str, cache_dir: str | Path | None = None) -> Pretrained:
    """The manifest's record of a hub checkpoint: its id and commit, its weights file."""
    folder = hub_snapshot(repo_id, cache_dir)
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), folder)
    return Pretrained(f"Hugging Face hub {repo_id} (commit {folder.name})", weights, None)


def _from_snapshot(
    loader: type, repo_id: str, cache_dir: str | Path | None, **options: object
) -> object:
    folder = hub_snapshot(repo_id, cache_dir)
    try:
        return loader.from_pretrained(str(folder), local_files_only=True, **options)
    except (OSError, ValueError) as exc:
        raise PairzooError(
            f"{loader.__name__} cannot read {repo_id!r} from {folder}: {exc}"
        ) from exc


def load_causal_lm(
    repo_id: str, cache_dir: str | Path | None = None
) -> tuple[transformers.PreTrainedModel, transformers.PreTrainedTokenizerBase]:
    """A causal language model (eager attention, no cache) and its tokenizer from the hub cache."""
    model = _from_snapshot(
        transformers.AutoModelForCausalLM, repo_id, cache_dir, attn_implementation="eager"
    )
    model.config.use_cache = False
    return model.eval(), load_tokenizer(repo_id, cache_dir)


def load_tokenizer(
    repo_id: str, cache_dir: str | Path | None = None
) -> transformers.PreTrainedTokenizerBase:
    """A hub model's tokenizer from the hub cache."""
    return _from_snapshot(transformers.AutoTokenizer, repo_id, cache_dir)


def load_image_classifier(
    repo_id: str, cache_dir: str | Path | None = None, loader: type | None = None
) -> transformers.PreTrainedModel:
    """An image classifier (for example a ViT) from the hub cache, by `loader` if given."""
    loader = loader or transformers.AutoModelForImageClassification
    return _from_snapshot(loader, repo_id, cache_dir, attn_implementation="eager").eval()


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
