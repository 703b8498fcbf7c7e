"""Runnable examples of the media core's feature API (docs/sfu_features.md)."""
