"""Serving an exported model over HTTP (results/serve.py): the routes (api.py) around one onnxruntime model
(model_service.py), as a Ray Serve deployment (deployment.py) or a plain uvicorn process (plain.py)."""
