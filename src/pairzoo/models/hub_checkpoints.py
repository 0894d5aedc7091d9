"""Pretrained models of the full profile from the local Hugging Face hub cache, never downloaded."""

from __future__ import annotations

from pathlib import Path

from pairzoo.data.hub_cache import from_snapshot, hub_snapshot, load_tokenizer
from pairzoo.hf_env import transformers
from pairzoo.models.pretrained import Pretrained

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def hub_pretrained(repo_id: str, cache_dir: str | Path | None = None) -> Pretrained:
    """The manifest's record of a hub checkpoint: its id and commit, its weights file."""
    folder = hub_snapshot(repo_id, cache_dir)
    weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), folder)
    return Pretrained(f"Hugging Face hub {repo_id} (commit {folder.name})", weights, None)


def load_causal_lm(
    repo_id: str, cache_dir: str | Path | None = None
) -> tuple[transformers.PreTrainedModel, transformers.PreTrainedTokenizerBase]:
    """A causal language model (eager attention, no cache) and its tokenizer from the hub cache."""
    model = from_snapshot(
        transformers.AutoModelForCausalLM, repo_id, cache_dir, attn_implementation="eager"
    )
    model.config.use_cache = False
    return model.eval(), load_tokenizer(repo_id, cache_dir)


def load_image_classifier(
    repo_id: str, cache_dir: str | Path | None = None, loader: type | None = None
) -> transformers.PreTrainedModel:
    """An image classifier (for example a ViT) from the hub cache, by `loader` if given."""
    loader = loader or transformers.AutoModelForImageClassification
    return from_snapshot(loader, repo_id, cache_dir, attn_implementation="eager").eval()
