"""The experiment folder's contract: its file names (``layout``), where it is stored (``storage``: a local
folder, or s3:// / gs:// through pyarrow) and its typed records (``records``: summary.json, each trial's
entry, run.json, search.yaml). The search writes the folder through it; results/ reads it through it."""
