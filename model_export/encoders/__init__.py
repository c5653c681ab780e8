from .efficientnet_lite import EfficientNetLiteEncoder, efficientnet_lite0_encoder
from .mobilenetv2 import InvertedResidual, MobileNetV2Encoder
from .resnet import ResNetEncoder, resnet18_encoder

# Segmentation encoders by name (spec.json's segmenter.encoder): name -> builder(output_stride).
SEGMENTATION_ENCODERS = {
    "resnet18": resnet18_encoder,  # the paper's, trained from scratch
    "efficientnet_lite0": efficientnet_lite0_encoder,  # ImageNet-pretrained (efficientnet_lite.py)
}

__all__ = ["SEGMENTATION_ENCODERS", "EfficientNetLiteEncoder", "InvertedResidual",
           "MobileNetV2Encoder", "ResNetEncoder", "efficientnet_lite0_encoder", "resnet18_encoder"]
