"""Exporting a trained checkpoint (results/export.py): where it comes from and the network it holds (``source``),
the parity check (``parity``), writing the folder (``write``) and its model card (``model_card``); the conversion
to ONNX and TorchScript (artifact/convert.py) and the MODEL_DIR format itself (artifact/model_dir.py) are the
deployable model's floor, shared with predict, serve and the search's latency objective."""
