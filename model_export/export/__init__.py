from .onnx_writer import export_all, export_graph, GraphSpec

__all__ = ["export_all", "export_graph", "GraphSpec"]
