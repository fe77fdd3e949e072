"""Watching a served model: drift of what it sees, and its accuracy once labels come back.

Numpy only (no torch, no scipy): the service runs it beside the model.
"""
