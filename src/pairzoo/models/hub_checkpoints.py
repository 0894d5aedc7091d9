"""The full profile's inputs read from local folders, never downloaded.

Models come from the Hugging Face hub cache (`HF_HUB_CACHE`, by default
~/.cache/huggingface/hub; layout `models--<org>--<name>/snapshots/<commit>/` with `refs/<revision>`
naming the commit), read with `local_files_only`; text comes from a folder of files. A missing item
gives one error that names it and where it was looked for.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.data.text import Corpus
from pairzoo.errors import PairzooError
from pairzoo.hf_env import huggingface_hub, transformers

TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst")


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


def _from_snapshot(loader: type, repo_id: str, cache_dir: str | Path | None) -> object:
    folder = hub_snapshot(repo_id, cache_dir)
    try:
        return loader.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise PairzooError(
            f"{loader.__name__} cannot read {repo_id!r} from {folder}: {exc}"
        ) from exc


def load_causal_lm(
    repo_id: str, cache_dir: str | Path | None = None
) -> tuple[transformers.PreTrainedModel, transformers.PreTrainedTokenizerBase]:
    """A causal language model and its tokenizer from the hub cache."""
    model = _from_snapshot(transformers.AutoModelForCausalLM, repo_id, cache_dir)
    tokenizer = _from_snapshot(transformers.AutoTokenizer, repo_id, cache_dir)
    return model.eval(), tokenizer


def load_image_classifier(
    repo_id: str, cache_dir: str | Path | None = None
) -> transformers.PreTrainedModel:
    """An image classifier (for example a ViT) from the hub cache."""
    return _from_snapshot(transformers.AutoModelForImageClassification, repo_id, cache_dir).eval()


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
