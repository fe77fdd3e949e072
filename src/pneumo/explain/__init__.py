"""Class activation maps: where the model looked, computed in numpy from the ONNX model's
``activations`` and ``activation_weights`` outputs (torch-free, for the service and reports)."""
