"""Model packages: ONNX export, model cards, the MLflow registry, promotion.

`package` and `card` import neither torch nor MLflow, so the inference service can read a
package; `export` and `register` need the training extra.
"""
