"""`artery-edge serve` under load, on loopback only, bounded in count and time.

    python benchmarks/serve_load.py [--model M] [--clients 8] [--requests 500] [--image patch.png]

Two servers in turn: without a camera, then with a video at its own frame rate while one MJPEG
and one decision-stream reader stay attached (the camera case). For each:
1. sequential: one client, HTTP requests alternating with a bare ``Classifier.predict`` of the
   same image file in this process (side by side, same machine load): p50 of each and the ratio,
   and of an empty request (``/healthz``): the round trip's own cost; also the CPU time the server
   spends per request against that of the bare call (steadier than wall time on a busy machine);
2. concurrent: --clients threads x --requests POSTs of the image (keep-alive): errors, p50 and
   p95 latency, requests/s, and the time per request (wall / requests) against bare p50;
3. the server's resident memory (VmRSS) after a warm-up and after --memory-requests (5,000) more.
The figures printed are medians (p50) unless named p95. Needs the serve extra and, for the
video, OpenCV; TensorFlow is not imported.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from artery_edge.edge import Classifier  # noqa: E402
from artery_edge.edge.reference import packaged_reference  # noqa: E402
from tests.serve_helpers import multipart, server_process, write_video  # noqa: E402

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Client:
    """One keep-alive connection posting the image; latency per request in ms."""

    def __init__(self, base: str, body: bytes, headers: dict) -> None:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)
        self.body, self.headers = body, headers

    def post(self) -> tuple[float, bool]:
        start = time.perf_counter()
        try:
            self.connection.request("POST", "/v1/predict", body=self.body, headers=self.headers)
            response = self.connection.getresponse()
            ok = response.status == 200 and bool(json.loads(response.read())["results"][0]["label"])
        except (OSError, http.client.HTTPException, ValueError, KeyError):
            self.connection.close()
            ok = False
        return (time.perf_counter() - start) * 1000, ok

    def empty(self) -> float:
        """A request that does no work (/healthz): what the round trip itself costs on this machine now."""
        start = time.perf_counter()
        self.connection.request("GET", "/healthz")
        self.connection.getresponse().read()
        return (time.perf_counter() - start) * 1000


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sequential(base: str, pid: int, classifier: Classifier, image: Path, body: bytes, headers: dict,
               count: int) -> dict:
    """Wall time is what a client waits; CPU time is what a request costs, and on a busy machine
    it is the steadier of the two (waiting for a core counts in one, not in the other)."""
    client = Client(base, body, headers)
    http_ms, bare, empty, errors, bare_cpu, server_cpu = [], [], [], 0, 0.0, 0.0
    for _ in range(count):
        start, cpu = time.perf_counter(), time.process_time()
        classifier.predict(image)
        bare.append((time.perf_counter() - start) * 1000)
        bare_cpu += time.process_time() - cpu
        cpu = cpu_seconds(pid)
        latency, ok = client.post()
        server_cpu += cpu_seconds(pid) - cpu
        http_ms.append(latency)
        errors += not ok
        empty.append(client.empty())
    return {"requests": count, "errors": errors, "http_p50_ms": statistics.median(http_ms),
            "bare_p50_ms": statistics.median(bare), "ratio_p50": statistics.median(http_ms) / statistics.median(bare),
            "empty_p50_ms": statistics.median(empty), "server_cpu_ms": server_cpu * 1000 / count,
            "bare_cpu_ms": bare_cpu * 1000 / count}


def concurrent(base: str, body: bytes, headers: dict, clients: int, requests: int, deadline: float) -> dict:
    def run_client(_) -> list[tuple[float, bool]]:
        client, out = Client(base, body, headers), []
        for _ in range(requests):
            if time.monotonic() > deadline:
                break
            out.append(client.post())
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for rows in pool.map(run_client, range(clients)) for r in rows]
    wall = time.perf_counter() - start
    latencies = [ms for ms, _ in results] or [float("nan")]
    return {"requests": len(results), "errors": sum(not ok for _, ok in results), "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95), "requests_per_s": len(results) / wall,
            "ms_per_request": wall * 1000 / max(1, len(results)), "complete": len(results) == clients * requests}


class Watcher(threading.Thread):
    """Reads a stream (MJPEG frames or SSE decisions) and counts its parts until stopped."""

    def __init__(self, base: str, path: str, marker: bytes) -> None:
        super().__init__(daemon=True)
        self.base, self.path, self.marker, self.count, self.stopped = base, path, marker, 0, False

    def run(self) -> None:
        host, port = self.base.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.request("GET", self.path)
        response = connection.getresponse()
        while not self.stopped:
            line = response.fp.readline()
            if not line:
                break
            self.count += line.startswith(self.marker)
        connection.close()


def measure(base: str, pid: int, args, classifier: Classifier, image: Path, deadline: float) -> dict:
    body, headers = multipart("image", image.name, image.read_bytes())
    warm = Client(base, body, headers)
    for _ in range(100):
        warm.post()
    rss_before = rss_mb(pid)
    figures = {"sequential": sequential(base, pid, classifier, image, body, headers, args.sequential),
               "concurrent": concurrent(base, body, headers, args.clients, args.requests, deadline)}
    done = figures["sequential"]["requests"] + figures["concurrent"]["requests"]
    rest = concurrent(base, body, headers, args.clients, max(0, args.memory_requests - done) // args.clients, deadline)
    figures["memory"] = {"requests": done + rest["requests"], "errors": rest["errors"], "rss_before_mb": rss_before,
                         "rss_after_mb": rss_mb(pid)}
    return figures


def report(name: str, f: dict) -> None:
    s, c, m = f["sequential"], f["concurrent"], f["memory"]
    print(f"== {name} ==")
    print(f"sequential, 1 client x {s['requests']}: HTTP p50 {s['http_p50_ms']:.2f} ms vs bare Classifier.predict "
          f"p50 {s['bare_p50_ms']:.2f} ms (side by side): ratio {s['ratio_p50']:.2f}x; errors {s['errors']}; "
          f"an empty request (/healthz) p50 {s['empty_p50_ms']:.2f} ms")
    print(f"  CPU per request: server {s['server_cpu_ms']:.2f} ms (the live feed's included when it runs) vs bare "
          f"predict {s['bare_cpu_ms']:.2f} ms: {s['server_cpu_ms'] / s['bare_cpu_ms']:.2f}x")
    print(f"concurrent, {c['requests']} requests{'' if c['complete'] else ' (time limit hit)'}: errors {c['errors']}, "
          f"p50 {c['p50_ms']:.1f} ms, p95 {c['p95_ms']:.1f} ms, {c['requests_per_s']:.0f} requests/s, "
          f"{c['ms_per_request']:.2f} ms per request = {c['ms_per_request'] / s['bare_p50_ms']:.2f}x bare p50")
    print(f"memory: RSS {m['rss_before_mb']:.1f} MB after warm-up, {m['rss_after_mb']:.1f} MB after "
          f"{m['requests']} more requests ({m['rss_after_mb'] - m['rss_before_mb']:+.1f} MB); errors {m['errors']}")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the packaged reference model")
    parser.add_argument("--image", type=Path, default=None, help="default: a synthetic 128 px PNG patch")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500, help="per client")
    parser.add_argument("--sequential", type=int, default=300, help="alternating HTTP / bare requests")
    parser.add_argument("--memory-requests", type=int, default=5000, help="requests between the two RSS readings")
    parser.add_argument("--max-seconds", type=float, default=900, help="per server; a phase past it stops early")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    model = args.model or packaged_reference()
    classifier = Classifier(model)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        image = args.image or Path(folder) / "patch.png"
        if args.image is None:
            pixels = np.random.default_rng(0).integers(40, 200, (128, 128, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(image)
        for name, source in (("no camera", []), ("video stream running (MJPEG + decisions read)", ["--video"])):
            if source:
                source.append(str(write_video(Path(folder) / "feed.avi", frames=250, fps=25, size=(640, 480))))
            with server_process(Path(folder), "--model", str(model), *source) as (process, base):
                watchers = [Watcher(base, "/v1/stream", b"--frame"), Watcher(base, "/v1/decisions", b"event: decision")] \
                    if source else []
                for watcher in watchers:
                    watcher.start()
                results[name] = measure(base, process.pid, args, classifier, image, time.monotonic() + args.max_seconds)
                for watcher in watchers:
                    watcher.stopped = True
                if watchers:
                    results[name]["stream"] = {"mjpeg_frames": watchers[0].count, "decisions": watchers[1].count}
            report(name, results[name])
            if "stream" in results[name]:
                print(f"meanwhile the stream sent {results[name]['stream']['mjpeg_frames']} MJPEG frames and "
                      f"{results[name]['stream']['decisions']} decisions")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    errors = sum(f[k]["errors"] for f in results.values() for k in ("sequential", "concurrent", "memory"))
    if errors:
        sys.exit(f"{errors} request(s) failed")


if __name__ == "__main__":
    main()
