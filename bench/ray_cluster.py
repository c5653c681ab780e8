"""`cutout remove --engine ray` on a two-host Ray cluster made of network namespaces, against
the local engine on the same folder. Needs root, `ip` and the `batch` extra.

    sudo python -m bench.ray_cluster [--images 12] [--cpus-per-host 1] [--json out.json]

Two namespaces on one bridge, each a host with its own address: the head (`ray start --head`)
and a worker (`ray start --address HEAD`), each offering `--cpus-per-host` CPUs to Ray. The
driver (`cutout remove IN -o OUT --engine ray --ray-address HEAD --threads N`) runs on the head;
its summary says how many files each node's actors cut out. Then the local engine (`cutout
remove`, its defaults) cuts out the same folder into another output. Printed: the wall time of
each, images/s, files per node. Inputs: `--images` CCP photos. The namespaces, the bridge and
the Ray processes (killed by their process group, never by name) are removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server import REPO

RAY_PORT = 6379


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)


class Network:
    """A bridge in this namespace and hosts attached to it, each in its own namespace."""

    def __init__(self, hosts: int) -> None:
        tag = f"{os.getpid() % 100000}"
        self.subnet = f"10.{random.Random(os.getpid()).randrange(16, 250)}.1"
        self.bridge = f"crb{tag}"
        self.names = [f"cutout-ray{tag}-{i}" for i in range(hosts)]
        self.veths = [f"crv{tag}x{i}" for i in range(hosts)]
        self.addresses = [f"{self.subnet}.{i + 2}" for i in range(hosts)]

    def create(self) -> None:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for name, veth, address in zip(self.names, self.veths, self.addresses, strict=True):
            sh("ip", "netns", "add", name)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p")
            sh("ip", "link", "set", veth, "master", self.bridge)
            sh("ip", "link", "set", veth, "up")
            sh("ip", "link", "set", veth + "p", "netns", name)
            inside = ("ip", "netns", "exec", name)
            sh(*inside, "ip", "addr", "add", f"{address}/24", "dev", veth + "p")
            sh(*inside, "ip", "link", "set", veth + "p", "up")
            sh(*inside, "ip", "link", "set", "lo", "up")

    def delete(self) -> None:
        for name, veth in zip(self.names, self.veths, strict=True):
            sh("ip", "link", "del", veth, check=False)
            sh("ip", "netns", "del", name, check=False)
        sh("ip", "link", "del", self.bridge, check=False)


def start_node(namespace: str, address: str, head: str | None, cpus: int, log: Path
               ) -> subprocess.Popen:
    command = ["ip", "netns", "exec", namespace, "ray", "start", "--block",
               "--node-ip-address", address, "--num-cpus", str(cpus), "--disable-usage-stats"]
    command += (["--address", f"{head}:{RAY_PORT}"] if head else
                ["--head", "--port", str(RAY_PORT), "--include-dashboard", "false"])
    with log.open("ab") as out:  # own session: stopped by its process group at the end
        return subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_for_nodes(namespace: str, head: str, count: int, timeout_s: float) -> None:
    probe = (f"import ray; ray.init(address='{head}:{RAY_PORT}', logging_level='ERROR'); "
             "print(sum(n['Alive'] for n in ray.nodes()))")
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", probe],
                              capture_output=True, text=True, timeout=120, check=False)
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise SystemExit(f"the Ray cluster did not reach {count} nodes in {timeout_s:.0f} s")


def cutout(command: list[str], namespace: str | None) -> tuple[float, str]:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    start = time.perf_counter()
    done = subprocess.run([*prefix, sys.executable, "-m", "service.cli", *command], cwd=REPO,
                          capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cutout remove failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return seconds, done.stdout.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--images-dir", type=Path,
                        default=REPO.parent / "shared" / "data" / "ccp_fashion" / "image")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--cpus-per-host", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("ray"):
        raise SystemExit("needs root, ip (iproute2) and ray (pip install -e '.[batch]')")
    photos = sorted(args.images_dir.glob("*.jpg"))[:args.images]
    if not photos:
        raise SystemExit(f"no photos in {args.images_dir}")
    # Ray's token authentication, one throwaway token for the nodes and the driver (inherited).
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    work = Path(tempfile.mkdtemp(prefix="cutout-raycluster-"))
    folder = work / "in"
    folder.mkdir()
    for photo in photos:
        shutil.copy(photo, folder / photo.name)
    network, nodes = Network(2), []
    try:
        network.create()
        head = network.addresses[0]
        nodes.append(start_node(network.names[0], head, None, args.cpus_per_host,
                                work / "head.log"))
        time.sleep(5)
        nodes.append(start_node(network.names[1], network.addresses[1], head,
                                args.cpus_per_host, work / "worker.log"))
        wait_for_nodes(network.names[0], head, 2, 300)
        ray_s, ray_summary = cutout(
            ["remove", str(folder), "-o", str(work / "ray"), "--engine", "ray",
             "--ray-address", f"{head}:{RAY_PORT}", "--threads", str(args.cpus_per_host),
             "--model-dir", str(args.models), "-q"], network.names[0])
    finally:
        for process in reversed(nodes):
            stop(process)
        network.delete()
    local_s, local_summary = cutout(
        ["remove", str(folder), "-o", str(work / "local"), "--model-dir", str(args.models),
         "-q"], None)
    # The summaries name the temporary folder: this machine's path, not a figure.
    ray_summary, local_summary = (text.replace(str(work), "WORK")
                                  for text in (ray_summary, local_summary))
    per_node = dict(re.findall(r"(\d+\.\d+\.\d+\.\d+) (\d+)", ray_summary))
    figures = {"images": len(photos), "cpus_per_host": args.cpus_per_host,
               "ray_s": ray_s, "ray_images_per_s": len(photos) / ray_s,
               "ray_files_per_node": {k: int(v) for k, v in per_node.items()},
               "local_s": local_s, "local_images_per_s": len(photos) / local_s,
               "ray_summary": ray_summary, "local_summary": local_summary}
    shutil.rmtree(work, ignore_errors=True)
    print(f"ray, 2 hosts x {args.cpus_per_host} CPU: {len(photos)} images in {ray_s:.1f} s "
          f"({figures['ray_images_per_s']:.2f} img/s, start-up included); files per node "
          f"{figures['ray_files_per_node']}\n  {ray_summary}")
    print(f"local engine (defaults): {len(photos)} images in {local_s:.1f} s "
          f"({figures['local_images_per_s']:.2f} img/s)\n  {local_summary}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    both_worked = len(per_node) == 2 and all(int(v) > 0 for v in per_node.values())
    return 0 if both_worked else 1


if __name__ == "__main__":
    sys.exit(main())
