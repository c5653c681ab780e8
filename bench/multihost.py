"""Several replicas on separate hosts behind HAProxy; one replica's whole server is killed
mid-run and started again. Needs root, `ip` (iproute2) and `haproxy`.

    sudo python -m bench.multihost [--replicas 3] [--clients 6] [--before-s 20] [--down-s 15]
                                   [--after-s 20] [--models models] [--json out.json]

Each replica is `cutout serve` (one worker) in its own network namespace, joined to this one by
a veth pair on its own /30 subnet: a host with its own address, as far as TCP is concerned.
HAProxy, in this namespace on 127.0.0.1, checks each replica's /readyz every 0.5 s (2 failures:
down, 2 successes: up) and balances by least connections; it tags every answer with the replica
that served it. `--clients` threads send a mix of image sizes and outputs through it; a client
retries a request (it is idempotent) on a connection error or a 502 / 503 / 504 / 429, up to 8
times with a short back-off, and a request is lost only if every try failed.

Timeline: `--before-s` of load, then SIGKILL to the process group of replica 0 (the server and
its worker), `--down-s` later it is started again; the load goes on until it has been back in
HAProxy's rotation for `--after-s`. Reported: requests sent, lost (the target is 0), retried;
when HAProxy marked the replica down after the kill and up after the restart (from its stats
page) and when it first served again; p50 / p95 per phase and requests per replica.

Traffic stays on loopback and on the namespaces made here; they are deleted at the end, also on
Ctrl-C or an error.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench.server import REPO, free_port, percentile

PORT = 8000
RETRY_STATUSES = {429, 502, 503, 504}
MAX_TRIES = 8
OUTPUTS = [{}, {"output": "alpha"}, {"format": "webp"}, {"output": "mask"},
           {"format": "jpeg", "bg_color": "ffffff"}]


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Host:
    """One network namespace joined to this one by a veth pair."""

    name: str
    veth: str
    address: str
    gateway: str
    process: subprocess.Popen | None = None

    def create(self) -> None:
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "p")
        sh("ip", "link", "set", self.veth + "p", "netns", self.name)
        sh("ip", "addr", "add", self.gateway + "/30", "dev", self.veth)
        sh("ip", "link", "set", self.veth, "up")
        inside = ("ip", "netns", "exec", self.name)
        sh(*inside, "ip", "addr", "add", self.address + "/30", "dev", self.veth + "p")
        sh(*inside, "ip", "link", "set", self.veth + "p", "up")
        sh(*inside, "ip", "link", "set", "lo", "up")

    def start(self, models: Path, threads: int, log: Path) -> None:
        command = ["ip", "netns", "exec", self.name, sys.executable, "-m", "service.cli",
                   "serve", "--host", self.address, "--port", str(PORT), "--model-dir",
                   str(models), "--workers", "1", "--threads", str(threads), "--queue-size",
                   "16", "--log-level", "warning"]
        with log.open("ab") as out:  # own session: the kill reaches the server and its worker
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=out,
                                            start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def ready(self) -> bool:
        try:
            return httpx.get(f"http://{self.address}:{PORT}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def delete(self) -> None:
        self.kill()
        sh("ip", "link", "del", self.veth, check=False)  # removes the peer too
        sh("ip", "netns", "del", self.name, check=False)


def make_hosts(count: int) -> list[Host]:
    tag = f"{os.getpid() % 100000}"
    subnet = random.Random(os.getpid()).randrange(16, 250)
    hosts = []
    for index in range(count):
        base = 4 * index  # one /30 per host: .1 is this side, .2 the host
        hosts.append(Host(f"cutout-mh{tag}-{index}", f"cmh{tag}v{index}",
                          f"10.{subnet}.0.{base + 2}", f"10.{subnet}.0.{base + 1}"))
    return hosts


def haproxy_config(hosts: list[Host], port: int, stats_port: int) -> str:
    servers = "\n".join(f"    server h{i} {host.address}:{PORT} check"
                        for i, host in enumerate(hosts))
    return f"""global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
frontend cutout
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    http-response set-header X-Replica %s
{servers}
listen stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


class StatsWatcher(threading.Thread):
    """Polls HAProxy's stats every 0.1 s: when each replica went down / up."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.events: list[tuple[float, str, str]] = []  # (time, replica, new status)
        self.status: dict[str, str] = {}

    def run(self) -> None:
        with httpx.Client(timeout=2) as client:
            while not self.stop.wait(0.1):
                try:
                    text = client.get(self.url + ";csv").text.lstrip("# ")
                except httpx.HTTPError:
                    continue
                for row in csv.DictReader(io.StringIO(text)):
                    if row["pxname"] != "replicas" or row["svname"] in ("FRONTEND", "BACKEND"):
                        continue
                    state = row["status"].split()[0]
                    if self.status.get(row["svname"]) != state:
                        self.status[row["svname"]] = state
                        self.events.append((time.monotonic(), row["svname"], state))

    def first(self, replica: str, state: str, after: float) -> float | None:
        return next((t for t, name, s in self.events if name == replica and s == state
                     and t >= after), None)


@dataclass
class Outcome:
    start: float
    seconds: float
    tries: int
    status: int | str
    replica: str | None
    errors: list[str] = field(default_factory=list)


def photo_bytes(rng: random.Random, base: np.ndarray) -> tuple[bytes, dict]:
    side = rng.randrange(160, 900)
    height = rng.randrange(160, 900)
    image = Image.fromarray(base).resize((side, height))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue(), rng.choice(OUTPUTS)


def scene() -> np.ndarray:
    yy, xx = np.mgrid[0:600, 0:400]
    image = np.full((600, 400, 3), 235, np.uint8)
    inside = ((xx - 200) / 110.0) ** 2 + ((yy - 300) / 200.0) ** 2 <= 1
    image[inside] = (40, 90, 160)
    return image


def send(client: httpx.Client, data: bytes, params: dict) -> Outcome:
    start = time.monotonic()
    errors: list[str] = []
    for attempt in range(1, MAX_TRIES + 1):
        try:
            response = client.post("/v1/cutout", content=data, params=params)
        except httpx.TransportError as exc:
            errors.append(type(exc).__name__)
        else:
            if response.status_code == 200:
                return Outcome(start, time.monotonic() - start, attempt, 200,
                               response.headers.get("x-replica"), errors)
            if response.status_code not in RETRY_STATUSES:
                return Outcome(start, time.monotonic() - start, attempt, response.status_code,
                               response.headers.get("x-replica"), errors)
            errors.append(str(response.status_code))
        time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))
    return Outcome(start, time.monotonic() - start, MAX_TRIES, "lost", None, errors)


class Load:
    """`clients` threads sending requests until stopped."""

    def __init__(self, url: str, clients: int, seed: int) -> None:
        self.url, self.clients, self.seed = url, clients, seed
        self.stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                        for i in range(clients)]

    def _client(self, index: int) -> None:
        rng, base = random.Random(self.seed + index), scene()
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self.stop.is_set():
                data, params = photo_bytes(rng, base)
                outcome = send(client, data, params)
                with self.lock:
                    self.outcomes.append(outcome)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> list[Outcome]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=300)
        return self.outcomes


def wait_for(condition, timeout_s: float, what: str) -> float:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return time.monotonic()
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")


def phase_figures(outcomes: list[Outcome], start: float, end: float) -> dict:
    chosen = [o for o in outcomes if start <= o.start < end and o.status == 200]
    seconds = [o.seconds for o in chosen]
    return {"requests": len(chosen), "p50_s": percentile(seconds, 50),
            "p95_s": percentile(seconds, 95)}


def run(args: argparse.Namespace) -> dict:
    hosts = make_hosts(args.replicas)
    workdir = Path(tempfile.mkdtemp(prefix="cutout-multihost-"))
    port, stats_port = free_port(), free_port()
    haproxy = None
    try:
        for host in hosts:
            host.create()
        for index, host in enumerate(hosts):
            host.start(args.models, args.threads, workdir / f"replica{index}.log")
        for index, host in enumerate(hosts):
            wait_for(host.ready, args.ready_within_s, f"replica {index} to be ready")
        config = workdir / "haproxy.cfg"
        config.write_text(haproxy_config(hosts, port, stats_port))
        haproxy = subprocess.Popen(["haproxy", "-f", str(config), "-db"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        watcher = StatsWatcher(f"http://127.0.0.1:{stats_port}/stats")
        watcher.start()
        wait_for(lambda: sum(s == "UP" for s in watcher.status.values()) == len(hosts), 30,
                 "HAProxy to see every replica up")
        load = Load(f"http://127.0.0.1:{port}", args.clients, args.seed)
        t0 = time.monotonic()
        load.start()
        time.sleep(args.before_s)
        t_kill = time.monotonic()
        hosts[0].kill()
        time.sleep(args.down_s)
        t_restart = time.monotonic()
        hosts[0].start(args.models, args.threads, workdir / "replica0.log")
        t_ready = wait_for(hosts[0].ready, args.ready_within_s, "replica 0 to be ready again")
        t_up = wait_for(lambda: watcher.first("h0", "UP", t_restart) is not None, 60,
                        "HAProxy to take replica 0 back")
        time.sleep(args.after_s)
        outcomes = load.finish()
        t_end = time.monotonic()
        watcher.stop.set()
    finally:
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(timeout=30)
        for host in hosts:
            host.delete()
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)

    t_down = watcher.first("h0", "DOWN", t_kill)
    t_lb_up = watcher.first("h0", "UP", t_restart)
    served_again = min((o.start + o.seconds for o in outcomes
                        if o.replica == "h0" and o.start >= t_restart), default=None)
    lost = [o for o in outcomes if o.status == "lost"]
    failed = [o for o in outcomes if o.status not in (200, "lost")]
    retried = [o for o in outcomes if o.tries > 1]
    per_replica: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.status == 200:
            per_replica[outcome.replica or "?"] = per_replica.get(outcome.replica or "?", 0) + 1
    kinds: dict[str, int] = {}
    for outcome in outcomes:
        for error in outcome.errors:
            kinds[error] = kinds.get(error, 0) + 1
    return {
        "replicas": args.replicas, "clients": args.clients, "requests": len(outcomes),
        "lost": len(lost), "failed_other": len(failed), "retried": len(retried),
        "retry_causes": kinds, "per_replica": dict(sorted(per_replica.items())),
        "lb_marked_down_after_kill_s": None if t_down is None else t_down - t_kill,
        "restart_to_ready_s": t_ready - t_restart,
        "lb_marked_up_after_ready_s": None if t_lb_up is None else t_lb_up - t_ready,
        "first_served_after_restart_s": None if served_again is None
        else served_again - t_restart,
        "phases": {
            "before": phase_figures(outcomes, t0, t_kill),
            "down": phase_figures(outcomes, t_kill, t_up),
            "after": phase_figures(outcomes, t_up, t_end)},
        "wall_s": t_end - t0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per replica")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--before-s", type=float, default=20)
    parser.add_argument("--down-s", type=float, default=15)
    parser.add_argument("--after-s", type=float, default=20)
    parser.add_argument("--ready-within-s", type=float, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("haproxy"):
        raise SystemExit("needs root, ip (iproute2) and haproxy")
    if args.replicas < 2:
        raise SystemExit("--replicas must be at least 2: one is killed")
    figures = run(args)
    phases = figures["phases"]
    print(f"multi-host: {figures['replicas']} replicas (own network namespaces) behind HAProxy "
          f"(leastconn, /readyz checks), {figures['clients']} clients, {os.cpu_count()} CPUs")
    print(f"requests {figures['requests']}: lost {figures['lost']}, other failures "
          f"{figures['failed_other']}, retried {figures['retried']} "
          f"(causes {figures['retry_causes']}); per replica {figures['per_replica']}")

    def secs(value: float | None) -> str:
        return "never" if value is None else f"{value:.2f} s"

    print(f"replica h0 killed: HAProxy marked it down after "
          f"{secs(figures['lb_marked_down_after_kill_s'])}; restarted, ready after "
          f"{secs(figures['restart_to_ready_s'])}, back in HAProxy's rotation "
          f"{secs(figures['lb_marked_up_after_ready_s'])} after that; first answer from it "
          f"{secs(figures['first_served_after_restart_s'])} after the restart")
    for name, phase in phases.items():
        print(f"  {name:6}: {phase['requests']} requests, p50 {phase['p50_s']:.2f} s, "
              f"p95 {phase['p95_s']:.2f} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["lost"] == 0 and figures["failed_other"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
