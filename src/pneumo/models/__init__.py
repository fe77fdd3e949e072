"""Backbones for grayscale chest X-rays: torchvision classifiers with a 1-channel stem.

Why a 1-channel stem rather than replicating the gray image on 3 channels: a convolution is
linear in its input, so for a gray image ``x``::

    conv(W, x.repeat(1, 3, 1, 1)) == conv(W.sum(dim=1, keepdim=True), x)

Summing the pretrained first-convolution weights over their RGB input dimension therefore gives
*exactly* the ImageNet model's response to the replicated image, while the data pipeline moves
and normalises a third of the bytes (timm's ``adapt_input_conv``; for other channel counts the
weights are tiled and rescaled the same way). The matching input normalisation is the mean of
ImageNet's per-channel statistics: ``IMAGENET_GRAY_MEAN`` and ``IMAGENET_GRAY_STD``.

Every backbone ends in a fresh ``Linear(num_features, num_outputs)`` producing logits, with an
optional dropout before it. The state-dict keys never depend on ``dropout`` (dropout has no
parameters, and ResNet/DenseNet always get a ``Sequential(Dropout | Identity, Linear)`` head),
so a checkpoint trained with dropout loads into the model evaluation builds without it.

``weights`` selects the initial parameters: ``"none"`` (random, seeded by the caller's
``torch.manual_seed``), ``"imagenet"`` (torchvision's published weights, from the cache in
``$TORCH_HOME`` or downloaded), or the path or ``s3://`` URL of a state dict: a torchvision
3-channel one, a pneumo one, or a checkpoint wrapping one under ``"model"``/``"state_dict"``.

Modules: :mod:`~pneumo.models.architectures` (the backbones offered, where each keeps its stem and
head), :mod:`~pneumo.models.backbones` (building one), :mod:`~pneumo.models.weights` (initial
weights), :mod:`~pneumo.models.checkpoint` (self-describing checkpoints).
"""
