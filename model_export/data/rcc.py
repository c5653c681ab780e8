"""Minimal reader of Qt resource bundles (.rcc), as shipped by gcompris-qt-data."""
from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

_COMPRESSED, _DIRECTORY, _ZSTD = 1, 2, 4


def iter_rcc(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (resource path, file bytes) for every file in a .rcc bundle.

    Zstd-compressed entries are skipped (not used by the Debian build of gcompris-qt-data)."""
    buf = path.read_bytes()
    if buf[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource bundle (no 'qres' magic)")
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node_size = 14 if version < 2 else 22

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", buf[names + offset: names + offset + 2])
        start = names + offset + 6
        return buf[start: start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", buf[at: at + 6])
        label = name(name_offset) if index else ""
        full = f"{prefix}/{label}" if label else prefix
        if flags & _DIRECTORY:
            count, first = struct.unpack(">II", buf[at + 6: at + 14])
            for child in range(first, first + count):
                yield from walk(child, full)
            return
        (offset,) = struct.unpack(">I", buf[at + 10: at + 14])
        (size,) = struct.unpack(">I", buf[data + offset: data + offset + 4])
        blob = buf[data + offset + 4: data + offset + 4 + size]
        if flags & _ZSTD:
            return
        if flags & _COMPRESSED:
            blob = zlib.decompress(blob[4:])
        yield full, blob

    yield from walk(0, "")
