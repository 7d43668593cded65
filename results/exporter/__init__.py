"""Exporting a trained checkpoint (results/export.py): where it comes from (``source``) and its model card
(``model_card``); the MODEL_DIR format itself is results/model_dir.py, shared with predict and serve."""
