"""Measuring tools of the bench: timed subprocesses with their peak memory, percentiles, servers.

Everything here is standard library (plus httpx, already a runtime dependency): peak resident
memory comes from ``os.wait4`` (the kernel's ``ru_maxrss`` of that one child) and from
``/proc/PID/status``, so no psutil is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Run:
    """One finished subprocess: exit status, output, wall time and peak resident memory."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_mb: float

    def json(self) -> Any:
        """The last stdout line, parsed as JSON (how every command here reports)."""
        lines = [line for line in self.stdout.strip().splitlines() if line.strip()]
        if not lines:
            raise RuntimeError(f"no output; stderr:\n{self.stderr[-3000:]}")
        return json.loads(lines[-1])

    def check(self, what: str) -> Run:
        """This run, or an error naming ``what`` with the end of its stderr."""
        if self.returncode != 0:
            raise RuntimeError(f"{what} failed with exit status {self.returncode}:\n{self.stderr[-3000:]}")
        return self


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = REPO,
        timeout: float = 4 * 3600) -> Run:
    """Run ``cmd`` to completion; wall time from spawn to exit, peak RSS of that child alone."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env, cwd=cwd, text=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Run(process.returncode, out.read(), err.read(), wall, usage.ru_maxrss / 1024)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak (VmHWM) resident memory of ``pid`` and its descendants, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    current = peak = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    current += int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024
    return current, peak


def stop(process: subprocess.Popen[Any], *, timeout: float = 20) -> None:
    """Terminate a server this bench started; kill it if it will not go."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def wait_http(url: str, process: subprocess.Popen[Any], *, timeout: float, log: Path) -> float:
    """Seconds until ``url`` answers 200 (polled every 0.1 s); raises if the process dies first."""
    started = time.perf_counter()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class Server:
    """A process serving on a loopback port, with its log file."""

    process: subprocess.Popen[Any]
    url: str
    log: Path
    start_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def chroma_server(path: Path, log: Path) -> Iterator[Server]:
    """A `chroma run` server on a free loopback port over the folder ``path``."""
    exe = Path(PYTHON).with_name("chroma")
    command = str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")
    port = free_port()
    with log.open("w") as sink:
        process = subprocess.Popen(
            [command, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
            stdout=sink, stderr=subprocess.STDOUT, env=dict(os.environ, ANONYMIZED_TELEMETRY="False"))
    url = f"http://127.0.0.1:{port}"
    try:
        server = Server(process, url, log)
        server.start_s = wait_http(f"{url}/api/v2/heartbeat", process, timeout=120, log=log)
        yield server
    finally:
        stop(process)


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and load of this machine."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gb = float("nan")
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(ram_gb, 1),
            "load": [round(x, 2) for x in os.getloadavg()], "python": sys.version.split()[0]}


def versions(packages: Sequence[str]) -> dict[str, str]:
    """Installed versions of ``packages`` (``-`` for missing ones)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def git_commit() -> str:
    """The short commit of the checkout the bench runs (``+dirty`` if it has local changes)."""
    if os.environ.get("BENCH_COMMIT"):  # a copy of a checkout, without its .git
        return os.environ["BENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
