"""The inference service: FastAPI + Uvicorn + ONNX Runtime.

Nothing in this package imports torch or MLflow's training side; `pip install 'pneumo[serve]'`
is enough. The model comes from a package folder or the MLflow registry
(:mod:`pneumo.packaging.registry`), is verified before it serves, and is swapped atomically
when the alias moves (:mod:`pneumo.serving.state`).
"""
