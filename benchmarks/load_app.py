"""Load test of the browser demo's API: concurrent text searches, and scoring a 15 s upload.

    python benchmarks/load_app.py                       # starts app.py on a 1,000-clip gallery (generated once)
    python benchmarks/load_app.py --url http://127.0.0.1:7860/   # a running app

Steps: one lone client's text searches (latency without contention; with gradio_client, and
through Gradio's plain HTTP API to separate the app's answer time from the client's), then CLIENTS concurrent
gradio_client clients x SEARCHES text searches each (captions of the gallery, k = 5), then
/score on a 15 s 640x360 H.264 + AAC clip written here with PyAV. Prints p50/p95 latencies and
errors and writes benchmarks/results/load_app.json. Not part of the unit suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(gallery: Path, size: int, timeout: float = 900):
    """``app.py`` in a subprocess (its own CPU time, apart from the clients); yields its URL."""
    port = free_port()
    cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--gallery", str(gallery),
           "--gallery-size", str(size)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = time.perf_counter()
    try:
        for line in proc.stdout:
            if "serving http" in line:
                print(f"app up in {time.perf_counter() - start:.1f} s: {line.strip()}", flush=True)
                break
            if time.perf_counter() - start > timeout:
                raise TimeoutError("app.py did not start in time")
        else:
            raise RuntimeError(f"app.py exited with status {proc.wait()}")
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep the pipe drained
        yield f"http://127.0.0.1:{port}/", proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95 and max in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))], 1), "max_ms": round(ms[-1], 1)}


def search_times(url: str, queries: list[str], k: int) -> tuple[list[float], list[str]]:
    """One client's sequential /search_by_text calls: latencies and error messages."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    times, errors = [], []
    for q in queries:
        t = time.perf_counter()
        try:
            results = client.predict(q, k, api_name="/search_by_text")
            if len(results) != k:
                errors.append(f"{len(results)} results for k = {k}")
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(f"{type(e).__name__}: {e}")
        times.append(time.perf_counter() - t)
    return times, errors


def http_search_times(url: str, queries: list[str], k: int) -> tuple[list[float], list[str]]:
    """The same searches through Gradio's plain HTTP API (POST the call, read its result stream):
    the app's answer time without gradio_client's own overhead."""
    import httpx

    times, errors = [], []
    with httpx.Client(timeout=60) as http:
        for q in queries:
            t = time.perf_counter()
            event = http.post(f"{url}gradio_api/call/search_by_text", json={"data": [q, k]}).json()["event_id"]
            body = http.get(f"{url}gradio_api/call/search_by_text/{event}").text
            times.append(time.perf_counter() - t)
            if "event: complete" not in body:
                errors.append(body[:200])
    return times, errors


def concurrent_searches(url: str, captions: list[str], clients: int, searches: int, k: int) -> dict:
    rng = random.Random(0)
    plans = [[rng.choice(captions) for _ in range(searches)] for _ in range(clients)]
    out: list[tuple[list[float], list[str]]] = [([], [])] * clients
    barrier = threading.Barrier(clients)

    def run(i):
        barrier.wait()
        out[i] = search_times(url, plans[i], k)

    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    times = [x for t, _ in out for x in t]
    errors = [e for _, errs in out for e in errs]
    return {**percentiles(times), "errors": len(errors), "first_errors": errors[:3], "wall_s": round(wall, 1),
            "searches_per_s": round(len(times) / wall, 1)}


def write_clip(path: Path, seconds: float = 15.0, size: tuple[int, int] = (640, 360), fps: int = 30) -> Path:
    """A 640x360 H.264 + AAC mp4: a ball bouncing over a gradient, a beep at each bounce."""
    import av

    w, h = size
    sr, n = 16000, int(seconds * fps)
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.uint8)
    t = np.arange(int(seconds * sr)) / sr
    audio = 0.05 * np.random.default_rng(0).standard_normal(t.size)
    audio += 0.4 * np.sin(2 * np.pi * 880 * t) * (np.mod(t, 1.0) < 0.1)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264" if "libx264" in av.codecs_available else "h264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = out.add_stream("aac", rate=sr, layout="mono")
        for i in range(n):
            frame = background.copy()
            cx, cy = int(w * (0.1 + 0.8 * i / n)), int(h * (0.8 - 0.6 * abs(np.sin(np.pi * i / fps))))
            frame[max(0, cy - 30):cy + 30, max(0, cx - 30):cx + 30] = (230, 40, 40)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))
        for s in range(0, t.size, 1024):
            af = av.AudioFrame.from_ndarray(audio[None, s:s + 1024].astype(np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = sr, s, Fraction(1, sr)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def score_times(url: str, clip: Path, runs: int) -> dict:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=False)
    times, volume = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = client.predict(handle_file(str(clip)), None, "a red ball bouncing with a high beep", api_name="/score")
        times.append(time.perf_counter() - t)
        volume = result[0]["volume"]
    return {**percentiles(times), "volume": volume, "clip_mb": round(clip.stat().st_size / 1e6, 2)}


def gallery_captions(gallery: Path) -> list[str]:
    lines = (gallery / "captions.jsonl").read_text(encoding="utf-8").splitlines()
    return [c for line in lines for c in json.loads(line)["captions"]]


def run(url: str, gallery: Path, args: argparse.Namespace, server_pid: int | None = None) -> dict:
    captions = gallery_captions(gallery)
    search_times(url, captions[:3], args.k)  # warm-up
    lone, lone_errors = search_times(url, random.Random(1).sample(captions, args.lone), args.k)
    http, http_errors = http_search_times(url, random.Random(2).sample(captions, args.lone), args.k)
    report = {"gallery_clips": len(captions) // 3, "k": args.k,
              "lone_client": {**percentiles(lone), "errors": len(lone_errors)},
              "lone_plain_http": {**percentiles(http), "errors": len(http_errors)}}
    print(f"lone gradio_client, {args.lone} searches: {report['lone_client']}", flush=True)
    print(f"lone plain HTTP client, {args.lone} searches: {report['lone_plain_http']}", flush=True)
    cpu0, client0 = cpu_seconds(server_pid), time.process_time()
    report["concurrent"] = {"clients": args.clients, "searches_each": args.searches,
                            **concurrent_searches(url, captions, args.clients, args.searches, args.k)}
    n = args.clients * args.searches
    report["concurrent"]["client_cpu_ms_per_search"] = round(1000 * (time.process_time() - client0) / n, 1)
    if cpu0 is not None:  # how much of the latency is the server's own work
        report["concurrent"]["server_cpu_ms_per_search"] = round(1000 * (cpu_seconds(server_pid) - cpu0) / n, 1)
    print(f"{args.clients} clients x {args.searches} searches: {report['concurrent']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        clip = write_clip(Path(tmp) / "clip_15s_640x360.mp4")
        print(f"wrote a 15 s 640x360 clip in {time.perf_counter() - t:.1f} s", flush=True)
        report["score_15s_640x360"] = score_times(url, clip, args.score_runs)
    print(f"/score of the 15 s 640x360 clip: {report['score_15s_640x360']}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running app (default: start app.py on --gallery)")
    parser.add_argument("--gallery", default=str(ROOT / "data" / "gallery-1000"), help="the app's gallery folder")
    parser.add_argument("--size", type=int, default=1000, help="clips when the gallery is generated (default 1000)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--searches", type=int, default=10, help="searches per client")
    parser.add_argument("--lone", type=int, default=30, help="searches of the lone client")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--score-runs", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    gallery = Path(args.gallery)
    if args.url:
        report = run(args.url, gallery, args)
    else:
        with running_app(gallery, args.size) as (url, pid):
            report = run(url, gallery, args, pid)
    report["machine"] = {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)}
    out = ROOT / "benchmarks" / "results" / "load_app.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    errors = report["lone_client"]["errors"] + report["lone_plain_http"]["errors"] + report["concurrent"]["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
