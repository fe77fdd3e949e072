"""Rendering, written once: value and interval formatting, markdown, HTML templates, PNG figures."""
