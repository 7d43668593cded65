"""The one typed trial config: every knob of one training run, validated once, passed down whole.

A trial config arrives as a nested dict (from YAML, from ``--set`` overrides, or from the dict Ray
hands each worker) and is rebuilt here into :class:`TrialConfig`. The classes are standard
dataclasses validated by pydantic (``extra="forbid"``): bounds are ``Field`` constraints, rules between fields
``model_validator``s (as tune/space.py), so a wrong type, value or unknown key is rejected with its key path;
:func:`parse` turns that into one readable line (infra/config_errors.py).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import field
from pathlib import Path
from typing import Any, Literal, Optional

import pydantic
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from infra.config_errors import ConfigError, Invalid, one_line

# Attribute docstrings become pydantic field descriptions, so they are the documentation.
_STRICT = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

DataFormat = Literal["auto", "gtsrb", "gtsrb_kaggle", "asl", "imagefolder", "synthetic"]


@dataclass(config=_STRICT)
class SyntheticConfig:
    """Size and seed of the generated synthetic traffic-sign set (format ``synthetic``)."""

    num_classes: int = Field(10, ge=2, le=43)
    """Number of sign classes, 2..43 (each a distinct plate shape / colour / glyph combination)."""
    tracks_per_class: int = Field(8, ge=1)
    """Physical signs per class in the training set; each becomes one track of frames."""
    frames_per_track: int = Field(10, ge=1)
    """Frames per track, taken at growing scale as in GTSRB."""
    test_per_class: int = Field(12, ge=1)
    """Test images per class (in ``Final_Test`` with ``GT-final_test.csv``)."""
    frame_size: int = Field(48, ge=16)
    """Side of the largest generated frame, in pixels."""
    seed: int = 0
    """Seed for the generator: the same seed writes byte-identical files."""


@dataclass(config=_STRICT)
class DataConfig:
    """Where the images come from and how they are prepared."""

    format: DataFormat = "synthetic"
    """Layout of ``root``: gtsrb, gtsrb_kaggle, asl, imagefolder, synthetic, or auto (detect)."""
    root: str = "data/synthetic"
    """Data root directory. A relative path is made absolute against the directory the command was started
    in, on the driver, before any config is shipped (Ray runs trials and workers in folders of their own)."""
    image_size: int = Field(32, ge=8, le=1024)
    """Side of the square images the model sees, in pixels (images are resized once, into the cache)."""
    roi_crop: bool = True
    """Crop GTSRB images to their annotated sign box before resizing."""
    val_fraction: float = Field(0.2, gt=0, lt=1)
    """Fraction of the training set held out for validation (whole tracks for GTSRB)."""
    split_seed: int = 0
    """Seed of the train/validation split, independent of the training seed."""
    max_bad_fraction: float = Field(0.01, ge=0, lt=1)
    """Largest fraction of unreadable image files that is skipped rather than fatal."""
    cache_dir: Optional[str] = None
    """Where decoded arrays are cached; default $SIGNSEARCH_CACHE or ~/.cache/signsearch (made absolute like root)."""
    gpu_cache_fraction: float = Field(0.5, ge=0, le=1)
    """Largest share of the GPU memory free at the start of a trial that its train + val uint8 arrays may take
    to be copied to the GPU once (batches are then gathered there); above it, batches are prefetched through
    pinned host memory. Several trials sharing one GPU each see what the others left free. 0 disables."""
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    """Generator settings, used when ``format`` is synthetic."""


@dataclass(config=_STRICT)
class AugmentConfig:
    """Batch augmentation on the training device; every strength is 0 (off) .. 1 (strongest)."""

    geometric: float = Field(0.3, ge=0, le=1)
    """Rotation (up to 30 deg), scale (up to +-30 %), translation (up to 15 %), shear and perspective."""
    photometric: float = Field(0.3, ge=0, le=1)
    """Brightness, contrast, saturation, hue, Gaussian blur and Gaussian noise."""
    erasing: float = Field(0.0, ge=0, le=1)
    """Probability of erasing one random rectangle (occlusion)."""
    p: float = Field(0.8, ge=0, le=1)
    """Probability that each enabled augmentation is applied to an image."""
    hflip: bool = False
    """Horizontal flips; off by default since they change the meaning of many signs and letters."""


@dataclass(config=_STRICT)
class CNNConfig:
    """Architecture of the small CNN (model name ``small_cnn``), searchable like any other knob."""

    blocks: int = Field(3, ge=1, le=8)
    """Number of conv blocks (conv -> batch norm -> ReLU -> pool)."""
    width: int = Field(32, ge=1)
    """Channels of the first block; each further block doubles them."""
    kernel_size: int = 3
    """Convolution kernel side, odd."""
    stride: int = Field(1, ge=1)
    """Convolution stride."""
    padding: Optional[int] = None
    """Convolution padding; None keeps the size ("same" for stride 1)."""
    pool: Literal["max", "avg", "none"] = "max"
    """2x2 pooling after each block."""
    dropout: float = Field(0.2, ge=0, lt=1)
    """Dropout before the classifier."""

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, kernel_size: int) -> int:
        if kernel_size % 2 != 1:
            raise Invalid("", kernel_size, "an odd number")
        return kernel_size


@dataclass(config=_STRICT)
class ModelConfig:
    """Which network, and which weights it starts from."""

    name: str = "mobilenetv3_small_050"
    """Any timm model name, or ``small_cnn`` for the configurable CNN below."""
    pretrained: bool = False
    """Start from ImageNet weights: from ``weights`` / $SIGNSEARCH_WEIGHTS, else timm's model hub."""
    weights: Optional[str] = None
    """Local weights file, or a directory holding ``<name>.safetensors|.pth|.bin`` or ``<name>/`` (made absolute
    like data.root)."""
    drop_rate: float = Field(0.0, ge=0, lt=1)
    """Dropout before the classifier of timm models."""
    freeze_backbone: bool = False
    """Feature extraction: train only the classifier head."""
    unfreeze_epoch: Optional[int] = Field(None, ge=1)
    """With a frozen backbone, unfreeze it at the start of this epoch (0-based); None keeps it frozen."""
    cnn: CNNConfig = field(default_factory=CNNConfig)
    """Architecture of ``small_cnn``."""

    @model_validator(mode="after")
    def _unfreeze_needs_frozen(self):
        if self.unfreeze_epoch is not None and not self.freeze_backbone:
            raise Invalid("unfreeze_epoch", self.unfreeze_epoch, "null unless freeze_backbone is true")
        return self


@dataclass(config=_STRICT)
class OptimConfig:
    """Optimizer, schedule and loss."""

    optimizer: Literal["adamw", "sgd"] = "adamw"
    """AdamW, or SGD with Nesterov momentum."""
    lr: float = Field(2e-3, gt=0)
    """Peak learning rate, reached after the warm-up (for the global batch, not scaled by workers)."""
    weight_decay: float = Field(0.01, ge=0)
    """Decoupled weight decay (AdamW) or L2 (SGD)."""
    momentum: float = 0.9
    """SGD momentum (ignored by AdamW)."""
    warmup_epochs: float = Field(0.5, ge=0)
    """Linear warm-up length in epochs (fractions allowed), then cosine decay to zero."""
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    """Cross-entropy label smoothing."""
    grad_clip: Optional[float] = Field(5.0, gt=0, json_schema_extra={"allowed": "> 0 or null"})
    """Clip the global gradient norm to this; None disables clipping."""
    batch_size: int = Field(64, ge=1)
    """Batch size per worker, not global."""


@dataclass(config=_STRICT)
class WorkersConfig:
    """Data-parallel workers of one trial."""

    num_workers: int = Field(1, ge=1)
    """Ray Train workers (DDP ranks); 1 runs the loop in the trial's own process."""
    cpus_per_worker: float = Field(1.0, gt=0)
    """Logical CPUs reserved per worker (fractions let several trials share a core)."""
    # A worker is one DDP rank on one device: a second GPU would be reserved and never used.
    gpus_per_worker: float = Field(0.0, ge=0, le=1, json_schema_extra={
        "allowed": "0..1 (a worker trains on one GPU; more GPUs per trial: num_workers)"})
    """GPUs per worker; fractions put several small trials on one GPU."""
    threads_per_worker: int = Field(0, ge=0)
    """torch intra-op threads per worker; 0 means max(1, cpus_per_worker)."""
    fake_gpus: bool = False
    """The GPUs Ray hands out are logical labels with no device behind them (Ray's fake multi-node cluster,
    cluster/local.yaml): workers train on the CPU and DDP uses gloo. Only for trying autoscaling; on real
    nodes a worker given GPUs that torch cannot see stops with an error instead."""
    placement: Literal["strict_pack", "pack", "spread"] = "strict_pack"
    """Where Ray puts one trial's workers (Ray Train's placement strategy): strict_pack keeps them on one node,
    so DDP's all-reduce runs over NVLink/PCIe or shared memory, never the network, and a trial needs a node
    with room for all its workers; pack only prefers one node (the autoscaler may then split a trial over
    single-GPU nodes); spread puts them on different nodes."""

    @model_validator(mode="after")
    def _whole_gpus_for_several_workers(self):
        # Ray would pack several ranks of one trial onto one GPU, and NCCL refuses duplicate GPUs.
        if self.num_workers > 1 and not self.fake_gpus and self.gpus_per_worker not in (0, 1):
            raise Invalid("gpus_per_worker", self.gpus_per_worker, "0 or 1 with several workers (NCCL cannot run "
                          "two ranks on one GPU); fractions only for 1-worker trials")
        return self


@dataclass(config=_STRICT)
class TrialConfig:
    """Everything one training run needs."""

    data: DataConfig = field(default_factory=DataConfig)
    """Data set, image size and split."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Network and starting weights."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Batch augmentation strengths."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer, schedule, loss and batch size."""
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    """Data-parallel workers and their resources."""
    epochs: int = Field(6, ge=1)
    """Training epochs (the schedule's length; ASHA may stop a trial earlier)."""
    seed: int = 0
    """Seed for weights init, shuffling and augmentation."""
    amp: bool = True
    """Mixed precision on CUDA (bfloat16 where the GPU has it natively, else float16 with loss scaling) and
    channels-last; CPU always runs float32."""
    compile: bool = False
    """torch.compile the model (CUDA only; searchable). Pays off on long runs: compiling takes tens of seconds
    per trial, which ASHA's short early rungs may not win back."""

    @model_validator(mode="after")
    def _unfreeze_within_epochs(self):
        if self.model.unfreeze_epoch is not None and self.model.unfreeze_epoch >= self.epochs:
            raise Invalid("model.unfreeze_epoch", self.model.unfreeze_epoch, f"< epochs ({self.epochs})")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-safe) that :func:`parse` turns back into this config."""
        return dataclasses.asdict(self)


PATH_KEYS = (("data", "root"), ("data", "cache_dir"), ("model", "weights"))
"""Path-valued settings of a trial config (section, key)."""


def absolute_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """``raw`` (a nested trial-config dict) with every relative path setting made absolute against ``base``.

    Done once, on the driver: Ray Tune runs every trial, and Ray Train every worker, in a working directory
    of its own, where a relative path would point somewhere else.
    """
    for section, key in PATH_KEYS:
        node = raw.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str) and "://" not in node[key]:
            node[key] = os.path.normpath(base / Path(node[key]).expanduser())
    return raw


def parse(raw: dict[str, Any] | None, source: str = "trial config", at: tuple[str, ...] = ()) -> TrialConfig:
    """Build a :class:`TrialConfig` from a nested dict; any problem is one :class:`ConfigError` line,
    ``source: key: problem``, its key as written in the file (``at``: where the trial config sits in it,
    e.g. ``("trial",)`` for a search file's trial section)."""
    if isinstance(raw, TrialConfig):
        return raw
    if raw is not None and not isinstance(raw, dict):
        where = ".".join(at) or "trial config"
        raise ConfigError(f"{source}: {where}: expected a mapping of config sections, got {type(raw).__name__}")
    try:
        return TrialConfig(**(raw or {}))
    except pydantic.ValidationError as error:
        raise ConfigError(f"{source}: {one_line(error, TrialConfig, at)}") from None
