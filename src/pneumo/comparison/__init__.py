"""`pneumo report`: two models (registered versions or runs) side by side, for people and PRs."""
