"""Output stride for segmentation encoders: past the asked stride, a stage keeps the resolution
and dilates its convolutions instead (DeepLabV3's atrous trick)."""
from __future__ import annotations

OUTPUT_STRIDES = (8, 16, 32)


def check_output_stride(output_stride: int) -> None:
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")


def stride_or_dilation(stride: int, stride_so_far: int, output_stride: int,
                       dilation: int) -> tuple[int, int, int]:
    """(stride, dilation, stride_so_far) of the next stage: its stride becomes dilation once
    `output_stride` is reached."""
    if stride > 1 and stride_so_far >= output_stride:
        return 1, dilation * stride, stride_so_far
    return stride, dilation, stride_so_far * stride
