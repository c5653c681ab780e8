from .resnet import ResNetEncoder, resnet18_encoder
from .mobilenetv2 import MobileNetV2Encoder, InvertedResidual

__all__ = ["ResNetEncoder", "resnet18_encoder", "MobileNetV2Encoder", "InvertedResidual"]
