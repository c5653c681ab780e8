"""`cutout remove --engine ray` (service/batch_ray.py): a local Ray cluster cuts out a folder
with the bundled models through Ray Data's actor pool; the cutouts equal the local engine's,
a rerun has nothing to do, a broken file is reported and counted."""
from __future__ import annotations

import numpy as np
import pytest

from service.cli import main
from support.service import REPO_ROOT, decode, disc_image, encoded

ray = pytest.importorskip("ray", reason="the batch extra: pip install -e '.[batch]'")

pytestmark = pytest.mark.slow
MODELS = REPO_ROOT / "models"


def test_ray_engine_cuts_out_a_folder_like_the_local_one(tmp_path, capsys):
    source = tmp_path / "in"
    (source / "nested").mkdir(parents=True)
    (source / "a.jpg").write_bytes(encoded(disc_image(320, 240), "JPEG", quality=92))
    (source / "nested" / "b.png").write_bytes(encoded(disc_image(200, 260, centre=(90, 140))))
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (source / "notes.txt").write_text("not an image")
    common = ["--model-dir", str(MODELS), "--threads", "2", "-q"]

    code = main(["remove", str(source), "-o", str(tmp_path / "ray"), "--engine", "ray",
                 *common])
    captured = capsys.readouterr()
    assert code == 1  # one file failed
    assert "failed: " in captured.err and "broken.jpg" in captured.err
    assert "2 written, 0 skipped (already done), 1 failed" in captured.out
    assert "files per node" in captured.out
    written = sorted(p.relative_to(tmp_path / "ray").as_posix()
                     for p in (tmp_path / "ray").rglob("*") if p.is_file())
    assert written == ["a.png", "nested/b.png"]  # no .partial left, nothing for broken.jpg

    (source / "broken.jpg").unlink()
    assert main(["remove", str(source), "-o", str(tmp_path / "local"), *common]) == 0
    capsys.readouterr()
    for name in written:  # the same pipeline, the same cutout
        ours = np.asarray(decode((tmp_path / "ray" / name).read_bytes()), dtype=np.int16)
        local = np.asarray(decode((tmp_path / "local" / name).read_bytes()), dtype=np.int16)
        assert ours.shape == local.shape and ours.shape[2] == 4
        assert np.abs(ours - local).max() <= 1, name
        alpha = ours[..., 3]
        assert alpha.min() == 0 and alpha.max() == 255  # a real cutout: object and background

    # Resumable: the rerun has nothing to do (and does not even start Ray).
    assert main(["remove", str(source), "-o", str(tmp_path / "ray"), "--engine", "ray",
                 *common]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_urls_need_the_ray_engine(tmp_path, capsys):
    code = main(["remove", "s3://bucket/photos", "-o", str(tmp_path), "-q"])
    assert code == 2
    assert "s3://bucket/photos is a URL" in capsys.readouterr().err
