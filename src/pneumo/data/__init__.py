"""The data half of the cycle: fetch, prepare (manifest, split, image cache, data card).

Nothing in this package imports torch.
"""
