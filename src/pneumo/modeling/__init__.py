"""Backbones and their weights; the public API is re-exported by :mod:`pneumo.models`."""
