"""Model packages: the model card, the package folder, ONNX export, the MLflow registry, the gate.

Everything here but `export` (the ONNX export and its parity check) imports neither torch nor
MLflow's training side, so the inference service can read packages, cards and the registry.
"""
