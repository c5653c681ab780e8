"""Product-like shots of Sweet Home 3D furniture (Debian ``sweethome3d-furniture``).

Each catalog (``.sh3f``, a zip) lists OBJ models with MTL materials and textures. A small
software renderer draws them with exact alpha: triangles sorted far to near (painter's
algorithm) and filled with OpenCV at 3x resolution, then area-downsampled, so colour and alpha
come out anti-aliased and consistent. Shading is Lambert plus a little specular under a random
key light; textures are sampled once per triangle (at its vertices' UVs), which keeps rendering
to a fraction of a second per view. Random yaw and a camera slightly above, as in product shots.
"""
from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

ROOT = Path("/usr/share/sweethome3d/furniture")
MAX_FACES = 60_000
SKIP_CATEGORIES = ("Doors and windows", "Staircases", "Exterior")
LICENCES = {
    "BlendSwap-CC-0": "CC0-1.0",
    "BlendSwap-CC-BY": "CC-BY-3.0",
    "KatorLegaz": "CC-BY-3.0-US",
    "Reallusion": "CC-BY-3.0",
    "Scopia": "CC-BY-3.0",
}


@dataclass
class Model:
    catalog: Path
    key: str  # file-name safe id
    name: str
    category: str
    obj: str  # path inside the zip


def iter_models(root: Path = ROOT) -> Iterator[Model]:
    for catalog in sorted(root.glob("*.sh3f")):
        with zipfile.ZipFile(catalog) as zf:
            text = zf.read("PluginFurnitureCatalog.properties").decode("latin1")
        props: dict[str, dict[str, str]] = {}
        for line in text.splitlines():
            m = re.match(r"(\w+)#(\d+)=(.*)", line)
            if m:
                props.setdefault(m.group(2), {})[m.group(1)] = m.group(3).strip()
        for index in sorted(props, key=int):
            p = props[index]
            if (
                "model" not in p
                or p.get("category", "") in SKIP_CATEGORIES
                or p.get("doorOrWindow") == "true"
            ):
                continue
            key = re.sub(
                r"[^A-Za-z0-9]+", "-", f"{catalog.stem}-{index}-{p.get('name', '')}"
            ).strip("-")
            yield Model(
                catalog, key, p.get("name", ""), p.get("category", ""), p["model"].lstrip("/")
            )


@dataclass
class Mesh:
    vertices: np.ndarray  # [n,3]
    faces: np.ndarray  # [m,3] vertex indices
    colours: np.ndarray  # [m,3] base colour per face (material x texture sample)
    specular: np.ndarray  # [m] specular strength


def _read_mtl(zf: zipfile.ZipFile, path: PurePosixPath) -> dict[str, dict[str, object]]:
    materials: dict[str, dict[str, object]] = {}
    current: dict[str, object] = {}
    try:
        text = zf.read(str(path)).decode("latin1")
    except KeyError:
        return materials
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "newmtl":
            current = {"Kd": np.array([0.7, 0.7, 0.7], np.float32), "Ks": 0.0, "d": 1.0}
            materials[" ".join(parts[1:])] = current
        elif parts[0] == "Kd" and len(parts) >= 4:
            current["Kd"] = np.array([float(x) for x in parts[1:4]], np.float32)
        elif parts[0] == "Ks" and len(parts) >= 4:
            current["Ks"] = float(np.mean([float(x) for x in parts[1:4]]))
        elif parts[0] in ("d", "Tr") and len(parts) >= 2:
            value = float(parts[1])
            current["d"] = value if parts[0] == "d" else 1.0 - value
        elif parts[0] == "map_Kd" and len(parts) >= 2:
            current["map_Kd"] = str(path.parent / parts[-1])
    return materials


def _texture(
    zf: zipfile.ZipFile, name: str, cache: dict[str, np.ndarray | None]
) -> np.ndarray | None:
    if name not in cache:
        try:
            image = Image.open(io.BytesIO(zf.read(name))).convert("RGB")
            image.thumbnail((256, 256))
            cache[name] = np.asarray(image, np.float32) / 255.0
        except (KeyError, OSError):
            cache[name] = None
    return cache[name]


def load_mesh(model: Model) -> Mesh | None:
    """Parse the OBJ (triangulated fans), its materials and a texture sample per face."""
    with zipfile.ZipFile(model.catalog) as zf:
        obj_path = PurePosixPath(model.obj)
        text = zf.read(str(obj_path)).decode("latin1")
        vertices: list[list[float]] = []
        uvs: list[list[float]] = []
        faces: list[tuple[int, int, int]] = []
        face_uv: list[tuple[int, int, int]] = []
        face_mat: list[str] = []
        materials: dict[str, dict[str, object]] = {}
        material = ""
        for line in text.splitlines():
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("vt "):
                uvs.append([float(x) for x in line.split()[1:3]])
            elif line.startswith("f "):
                refs = [r.split("/") for r in line.split()[1:]]
                vi = [int(r[0]) for r in refs]
                ti = [int(r[1]) if len(r) > 1 and r[1] else 0 for r in refs]
                vi = [i - 1 if i > 0 else len(vertices) + i for i in vi]
                ti = [i - 1 if i > 0 else (len(uvs) + i if i < 0 else -1) for i in ti]
                for k in range(1, len(vi) - 1):
                    faces.append((vi[0], vi[k], vi[k + 1]))
                    face_uv.append((ti[0], ti[k], ti[k + 1]))
                    face_mat.append(material)
                if len(faces) > MAX_FACES:
                    return None
            elif line.startswith("usemtl"):
                material = line[6:].strip()
            elif line.startswith("mtllib"):
                materials.update(_read_mtl(zf, obj_path.parent / line[6:].strip()))
        if not faces:
            return None
        v = np.asarray(vertices, np.float32)
        f = np.asarray(faces, np.int64)
        uv = np.asarray(uvs, np.float32) if uvs else np.zeros((1, 2), np.float32)
        fuv = np.asarray(face_uv, np.int64)
        colours = np.empty((len(f), 3), np.float32)
        specular = np.zeros(len(f), np.float32)
        keep = np.ones(len(f), bool)
        textures: dict[str, np.ndarray | None] = {}
        names = np.asarray(face_mat)
        for mat_name in np.unique(names):
            sel = names == mat_name
            mat = materials.get(str(mat_name), {})
            kd = np.asarray(mat.get("Kd", np.array([0.7, 0.7, 0.7], np.float32)), np.float32)
            colours[sel] = kd
            specular[sel] = float(mat.get("Ks", 0.0))  # type: ignore[arg-type]
            if float(mat.get("d", 1.0)) < 0.6:  # type: ignore[arg-type]
                keep &= ~sel  # glass: left out rather than drawn opaque
            tex = _texture(zf, str(mat["map_Kd"]), textures) if "map_Kd" in mat else None
            if tex is not None and uvs:
                idx = fuv[sel]
                valid = (idx >= 0).all(1)
                if valid.any():
                    th, tw = tex.shape[:2]
                    samples = []
                    for corner_uv in (
                        uv[idx[valid]].mean(1),
                        *[uv[idx[valid][:, c]] for c in range(3)],
                    ):
                        x = (np.mod(corner_uv[:, 0], 1.0) * (tw - 1)).astype(int)
                        y = ((1 - np.mod(corner_uv[:, 1], 1.0)) * (th - 1)).astype(int)
                        samples.append(tex[y, x])
                    sub = colours[sel]
                    sub[valid] = np.mean(samples, 0)
                    colours[sel] = sub
    if not keep.any():
        return None
    return Mesh(v, f[keep], colours[keep], specular[keep])


def render(mesh: Mesh, rng: np.random.Generator, size: int = 512, ss: int = 3) -> np.ndarray:
    """RGBA uint8 [size,size,4] view of the mesh with exact (coverage) alpha."""
    v = mesh.vertices - (mesh.vertices.max(0) + mesh.vertices.min(0)) / 2
    v = v / max(float(np.abs(v).max()), 1e-6)
    yaw = np.deg2rad(rng.uniform(-70, 70) + (180 if rng.random() < 0.15 else 0))
    pitch = np.deg2rad(rng.uniform(3, 30))
    ry = np.array(
        [[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]], np.float32
    )
    rx = np.array(
        [[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]],
        np.float32,
    )
    p = v @ (rx @ ry).T
    distance = rng.uniform(3.0, 6.0)
    depth = distance - p[:, 2]
    xy = p[:, :2] / depth[:, None]
    xy[:, 1] *= -1  # image rows go down
    big = size * ss
    lo, hi = xy.min(0), xy.max(0)
    scale = 0.96 * big / max(float((hi - lo).max()), 1e-6)
    pix = (xy - (lo + hi) / 2) * scale + big / 2

    tri = p[mesh.faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-9)
    light = np.array(
        [rng.uniform(-0.7, 0.7), rng.uniform(0.3, 1.0), rng.uniform(0.4, 1.0)], np.float32
    )
    light /= np.linalg.norm(light)
    ambient = rng.uniform(0.3, 0.55)
    lambert = np.abs(normals @ light)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    spec = np.abs(normals @ half) ** 30 * mesh.specular * rng.uniform(0.2, 0.6)
    shade = ambient + (1 - ambient) * lambert
    colours = np.clip(mesh.colours * shade[:, None] + spec[:, None], 0, 1)

    order = np.argsort(-depth[mesh.faces].mean(1))  # far to near
    canvas = np.zeros((big, big, 4), np.float32)
    points = np.round(pix[mesh.faces] * 4).astype(np.int32)  # 2 bits of sub-pixel precision
    for k in order:
        c = colours[k]
        cv2.fillConvexPoly(
            canvas, points[k], (float(c[0]), float(c[1]), float(c[2]), 1.0), cv2.LINE_8, 2
        )
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    alpha = np.clip(small[..., 3], 0, 1)
    rgb = small[..., :3] / np.maximum(
        alpha[..., None], 1e-4
    )  # colour was drawn unpremultiplied on 0
    rgb = np.clip(rgb, 0, 1) ** rng.uniform(0.85, 1.1)
    return (np.dstack([rgb, alpha]) * 255 + 0.5).astype(np.uint8)
