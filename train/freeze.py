"""Feature-extraction fine-tuning: freeze everything but the classifier head, and keep frozen BatchNorm in eval.

:func:`set_backbone_trainable` freezes (or unfreezes) every parameter but the head; :func:`apply_frozen_bn_eval`,
called by the training loop after every ``model.train()``, keeps the frozen BatchNorm layers in eval mode so
their running statistics stay the pretrained ones.

Why not ``timm.utils.freeze``/``unfreeze``: they swap BatchNorm layers for ``FrozenBatchNorm2d`` modules in
place, which changes the state dict (no ``num_batches_tracked``: checkpoints would differ between frozen and
unfrozen trials), cannot run on a model already wrapped in DistributedDataParallel, and works on named
submodules rather than "all but ``get_classifier()``" for both timm models and ``small_cnn``. Flipping
``requires_grad`` and the BatchNorm mode keeps the modules and the checkpoint format as they are.
"""

from __future__ import annotations

from torch import nn

from train.model import unwrap

# The public BatchNorm classes (timm's BatchNormAct2d subclasses BatchNorm2d; a LazyBatchNorm becomes one of
# them on its first forward), rather than torch's private _BatchNorm base.
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _classifier_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of the classifier head, as timm's ``get_classifier()`` (tuple for split heads) names it."""
    head = unwrap(model).get_classifier()
    heads = head if isinstance(head, (tuple, list)) else (head,)
    return [p for module in heads if isinstance(module, nn.Module) for p in module.parameters()]


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze every parameter except the classifier head, which always trains.

    Frozen parameters get ``requires_grad=False``, so autograd skips them and optimizers (AdamW/SGD skip
    parameters whose ``.grad`` is None) neither step nor weight-decay them. BatchNorm layers follow: see
    :func:`apply_frozen_bn_eval`, which this function applies at once when the model is in train mode.
    """
    for parameter in model.parameters():
        parameter.requires_grad_(trainable)
    for parameter in _classifier_parameters(model):
        parameter.requires_grad_(True)
    if model.training:
        model.train()  # undo an earlier apply_frozen_bn_eval on unfreezing; then re-apply for what stays frozen
        apply_frozen_bn_eval(model)


def apply_frozen_bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose affine parameters are all frozen into eval mode; returns how many.

    Call after every ``model.train()`` (which flips all layers back to train). Usual fine-tuning practice
    (timm's ``freeze_batch_norm_2d``, torchvision detection backbones): a frozen backbone should compute
    exactly the features it was pretrained with, so its BatchNorm layers normalise with the pretrained
    running statistics and do not update them from the small fine-tuning batches. BatchNorm without
    affine parameters is left alone (nothing marks it frozen).
    """
    count = 0
    for module in model.modules():
        if isinstance(module, _BATCH_NORMS):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params) and module.training:
                module.eval()
                count += 1
    return count
