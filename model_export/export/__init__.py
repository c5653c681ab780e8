from .onnx_writer import GraphSpec, export_all, export_graph

__all__ = ["GraphSpec", "export_all", "export_graph"]
