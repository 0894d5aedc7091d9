"""A small vision transformer from a configuration (transformers' ViT), returning logits only."""

from __future__ import annotations

import torch

from pairzoo.hf_env import transformers


class LogitsViT(transformers.ViTForImageClassification):
    """`ViTForImageClassification` whose forward takes images and returns the class logits.

    The state-dict names are transformers' own (`vit.…`, `classifier.…`), so the model trains,
    exports and is scored like pairzoo's other classifiers.
    """

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Class logits for a batch of images."""
        return super().forward(pixel_values=pixel_values).logits


def digits_vit(num_classes: int, in_channels: int) -> LogitsViT:
    """A ViT for 8×8 images: 2×2 patches, 2 layers of width 64 (about 0.1 M parameters)."""
    config = transformers.ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=in_channels,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        num_labels=num_classes,
        attn_implementation="eager",
    )
    return LogitsViT(config).eval()
