"""Architectures: builders, heads, pretrained weights, autoencoders, sequence models."""
