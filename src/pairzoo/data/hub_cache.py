"""The local Hugging Face hub cache: snapshot folders and what loads from them, never downloaded.

The cache is `HF_HUB_CACHE` (by default ~/.cache/huggingface/hub; layout
`models--<org>--<name>/snapshots/<commit>/` with `refs/<revision>` naming the commit); everything
is read with `local_files_only`. A missing item gives one error naming it and where it was looked.
"""

from __future__ import annotations

from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.hf_env import huggingface_hub, transformers


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


def from_snapshot(
    loader: type, repo_id: str, cache_dir: str | Path | None, **options: object
) -> object:
    """`loader.from_pretrained` on a model's snapshot folder in the hub cache."""
    folder = hub_snapshot(repo_id, cache_dir)
    try:
        return loader.from_pretrained(str(folder), local_files_only=True, **options)
    except (OSError, ValueError) as exc:
        raise PairzooError(
            f"{loader.__name__} cannot read {repo_id!r} from {folder}: {exc}"
        ) from exc


def load_tokenizer(
    repo_id: str, cache_dir: str | Path | None = None
) -> transformers.PreTrainedTokenizerBase:
    """A hub model's tokenizer from the hub cache."""
    return from_snapshot(transformers.AutoTokenizer, repo_id, cache_dir)
