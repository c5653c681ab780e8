"""Opt-in (CUTOUT_NETNS_TESTS=1, as root with `ip` and `haproxy`; .ci/run sets it): two replicas
in their own network namespaces behind HAProxy, one killed and restarted while clients send
requests (bench/multihost.py). No request may be lost, HAProxy must take the killed replica out
and back, and it must serve again after its restart."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("CUTOUT_NETNS_TESTS") != "1" or os.geteuid() != 0
    or not shutil.which("ip") or not shutil.which("haproxy"),
    reason="opt-in: CUTOUT_NETNS_TESTS=1, root, ip and haproxy")


def test_a_replica_killed_mid_run_loses_no_request(tmp_path):
    figures_file = tmp_path / "multihost.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.multihost", "--replicas", "2", "--clients", "3",
         "--before-s", "8", "--down-s", "4", "--after-s", "8", "--json", str(figures_file)],
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(figures_file.read_text())
    assert figures["lost"] == 0 and figures["failed_other"] == 0
    assert figures["lb_marked_down_after_kill_s"] is not None
    assert figures["lb_marked_down_after_kill_s"] < 5  # 2 failed checks 0.5 s apart, and slack
    assert figures["first_served_after_restart_s"] is not None  # back in rotation, serving
    assert set(figures["per_replica"]) == {"h0", "h1"}
    assert all(phase["requests"] > 0 for phase in figures["phases"].values())
    # Nothing of ours is left behind.
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                check=False).stdout
    assert "cutout-mh" not in namespaces
