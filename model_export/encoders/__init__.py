from .efficientnet_lite import (
    EfficientNetLiteEncoder,
    efficientnet_lite0_encoder,
    efficientnet_lite1_encoder,
    efficientnet_lite2_encoder,
)
from .mobilenetv2 import InvertedResidual, MobileNetV2Encoder
from .resnet import ResNetEncoder, resnet18_encoder

# Segmentation encoders by name (spec.json's segmenter.encoder): name -> builder(output_stride).
SEGMENTATION_ENCODERS = {
    "resnet18": resnet18_encoder,  # the paper's, trained from scratch
    # ImageNet-pretrained (efficientnet_lite.py): Lite0 ships; Lite1 and Lite2 are larger
    "efficientnet_lite0": efficientnet_lite0_encoder,
    "efficientnet_lite1": efficientnet_lite1_encoder,
    "efficientnet_lite2": efficientnet_lite2_encoder,
}

__all__ = ["SEGMENTATION_ENCODERS", "EfficientNetLiteEncoder", "InvertedResidual",
           "MobileNetV2Encoder", "ResNetEncoder", "efficientnet_lite0_encoder",
           "efficientnet_lite1_encoder", "efficientnet_lite2_encoder", "resnet18_encoder"]
