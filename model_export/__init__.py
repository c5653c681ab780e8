"""Training and ONNX export of AlphaNet (segmentation + ED trimap layer + attention matting).

Only this package imports torch; the service runs the exported graphs with ONNX Runtime.
"""
