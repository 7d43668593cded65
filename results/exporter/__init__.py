"""Exporting a trained checkpoint (results/export.py): where it comes from (``source``), the conversion to ONNX and
TorchScript (``convert``), the parity check (``parity``), writing the folder (``write``) and its model card
(``model_card``); the MODEL_DIR format itself is artifact/model_dir.py, shared with predict and serve."""
