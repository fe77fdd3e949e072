"""Training with PyTorch: cached shards → on-device augmentation → model → checkpoints and MLflow;
scoring a split for evaluation; finding runs on disk."""
