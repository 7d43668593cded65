"""Read an offline W&B run (``run-<id>.wandb``) back into its config and per-step history.

wandb 0.31 keeps its offline-run reader in the compiled ``wandb-core`` service; what it exposes to
Python is the record schema (``wandb.proto.wandb_internal_pb2.Record``). The file is a LevelDB-style
log (32 KiB blocks of checksummed chunks) after a 7-byte W&B header; this module walks the chunks
and decodes every record with wandb's own protobuf classes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B"
HEADER_SIZE = 7  # ":W&B", magic 0xBEE1, version byte
BLOCK = 32 * 1024
CHUNK_HEADER = 7  # crc32c (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    run_id: str = ""
    group: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _records(data: bytes):
    assert data[:4] == HEADER, "not a W&B transaction log"
    offset, pending = HEADER_SIZE, b""
    while offset + CHUNK_HEADER <= len(data):
        room = BLOCK - offset % BLOCK
        if room < CHUNK_HEADER:  # block trailer padding
            offset += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset:offset + CHUNK_HEADER])
        payload = data[offset + CHUNK_HEADER:offset + CHUNK_HEADER + length]
        offset += CHUNK_HEADER + length
        if kind == 0 and length == 0:
            continue
        if kind in (FULL, FIRST):
            pending = payload
        else:
            pending += payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _nested_set(target: dict, keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def read_offline_run(run_dir: Path) -> OfflineRun:
    """Config (merged from the run record and config updates) and history rows of one offline run."""
    (log_file,) = Path(run_dir).glob("run-*.wandb")
    run = OfflineRun()
    for record in _records(log_file.read_bytes()):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id, run.group = record.run.run_id, record.run.run_group
            run.tags = list(record.run.tags)
            for item in record.run.config.update:
                _nested_set(run.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "config":
            for item in record.config.update:
                _nested_set(run.config, list(item.nested_key) or [item.key], json.loads(item.value_json))
        elif kind == "history":
            row = {}
            for item in record.history.item:
                _nested_set(row, list(item.nested_key) or [item.key], json.loads(item.value_json))
            run.history.append(row)
    # Config keys set at init are stored as {"value": ...}.
    run.config = {key: value.get("value", value) if isinstance(value, dict) else value
                  for key, value in run.config.items()}
    return run
