"""Training with PyTorch: cached shards → on-device augmentation → model → MLflow."""
