from .mobilenetv2 import InvertedResidual, MobileNetV2Encoder
from .resnet import ResNetEncoder, resnet18_encoder

__all__ = ["InvertedResidual", "MobileNetV2Encoder", "ResNetEncoder", "resnet18_encoder"]
