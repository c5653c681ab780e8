from . import cutout, health, metrics, removebg

__all__ = ["cutout", "health", "metrics", "removebg"]
