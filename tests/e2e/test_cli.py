"""`cutout remove` on folders (progress, resumable, failures reported) and `cutout serve`
refusing to start without a model folder."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from service.cli import main
from support.service import REPO_ROOT, decode, disc_image, encoded


def make_folder(root):
    (root / "nested").mkdir(parents=True)
    (root / "a.jpg").write_bytes(encoded(disc_image(160, 120), "JPEG"))
    (root / "b.png").write_bytes(encoded(disc_image(100, 140)))
    (root / "nested" / "c.webp").write_bytes(encoded(disc_image(90, 90), "WEBP"))
    (root / "notes.txt").write_text("not an image, not picked up")


def test_remove_folder_then_resume(random_model_dir, tmp_path, capsys):
    source, out = tmp_path / "in", tmp_path / "out"
    make_folder(source)
    args = [str(source), "-o", str(out), "--model-dir", str(random_model_dir),
            "--max-inference-side", "256"]
    assert main(["remove", *args]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "b.png", "nested/c.png"]
    image = decode((out / "b.png").read_bytes())
    assert image.mode == "RGBA" and image.size == (100, 140)
    captured = capsys.readouterr()
    assert "3 written, 0 skipped" in captured.out
    assert "3/3" in captured.err  # tqdm's progress bar

    # Resumable: done files are skipped, a new one is processed.
    (source / "d.png").write_bytes(encoded(disc_image(64, 64)))
    assert main(["remove", *args]) == 0
    assert "1 written, 3 skipped" in capsys.readouterr().out
    assert main(["remove", *args]) == 0
    assert "all done already" in capsys.readouterr().out


def test_remove_reports_failures_and_goes_on(random_model_dir, tmp_path, capsys):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    (source / "good.png").write_bytes(encoded(disc_image(80, 60)))
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code = main(["remove", str(source), "-o", str(out), "--model-dir", str(random_model_dir),
                 "--output", "alpha", "--format", "webp", "-q"])
    assert code == 1
    captured = capsys.readouterr()
    assert "failed: " in captured.err and "broken.jpg" in captured.err
    assert "1 written, 0 skipped (already done), 1 failed" in captured.out
    assert (out / "good.webp").is_file() and not (out / "broken.webp").exists()
    assert not list(out.glob("*.partial"))
    assert np.asarray(decode((out / "good.webp").read_bytes())).shape[:2] == (60, 80)


def test_serve_without_models_fails_with_a_clear_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--model-dir", str(tmp_path / "empty"),
         "--port", "0"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False)
    assert result.returncode == 2
    assert "has no spec.json" in result.stderr and "model_export.export" in result.stderr


def test_remove_in_two_processes_keeps_resume_and_failure_report(random_model_dir, tmp_path,
                                                                 capsys):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    sizes = [(80 + 10 * i, 60 + 8 * i) for i in range(6)]
    for i, size in enumerate(sizes):
        (source / f"{i}.png").write_bytes(encoded(disc_image(*size)))
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    args = [str(source), "-o", str(out), "--model-dir", str(random_model_dir), "--workers", "2",
            "--max-inference-side", "256"]
    assert main(["remove", *args]) == 1
    captured = capsys.readouterr()
    assert "6 written, 0 skipped (already done), 1 failed" in captured.out
    assert "(2 process(es))" in captured.out  # distinct process ids that cut out a file
    assert "failed: " in captured.err and "broken.jpg" in captured.err
    assert "7/7" in captured.err  # the progress bar, fed from the parent
    for i, size in enumerate(sizes):
        assert decode((out / f"{i}.png").read_bytes()).size == size
    assert not list(out.glob("*.partial"))

    (source / "broken.jpg").unlink()
    assert main(["remove", *args]) == 0
    assert "all done already" in capsys.readouterr().out
