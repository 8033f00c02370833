#!/usr/bin/python3
"""bench/api: request throughput and latency of vmmd's API, QEMU's QMP beside it.

vmmd: a daemon with 50 defined VMs; build/bench/api-load drives N concurrent
closed-loop connections alternating vm.info (a random VM) and vm.list;
throughput, p50 and p99 latency, vmmd's peak RSS. N = 1, 16, 64 (the
headline) and 256; three runs each, medians reported. With N closed-loop
connections the mean latency is N / throughput (Little's law), so p99 at
high N measures throughput as much as responsiveness.

QEMU: QMP accepts one client per monitor socket, so it is measured with the
same load generator on one connection (query-status) against a running
QEMU microvm, beside vmmd with one connection.

Results also go to BUILD/bench/api.json.
"""
import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from common import start_vmmd

ROOT = pathlib.Path(__file__).resolve().parents[1]


def call(sock_path, method, params):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("rwb")
    f.write(json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).encode()
            + b"\n")
    f.flush()
    reply = json.loads(f.readline())
    s.close()
    if "error" in reply:
        sys.exit(f"bench/api: {method}: {reply['error']['message']}")
    return reply["result"]


def rss_kib(pid, field="VmHWM"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def load(build, sock, clients, seconds, mode, vms=50):
    r = subprocess.run([str(build / "bench" / "api-load"), "--socket", sock, "--clients",
                        str(clients), "--seconds", str(seconds), "--vms", str(vms), "--mode", mode],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench/api: load generator failed: {r.stderr}{r.stdout}")
    return json.loads(r.stdout)


def median_of(build, sock, clients, seconds, runs):
    """Medians of each figure over `runs` runs (figures sorted separately)."""
    results = [load(build, sock, clients, seconds, "vmmd") for _ in range(runs)]
    med = dict(results[0])
    for key in ("throughput", "p50_us", "p99_us"):
        med[key] = sorted(r[key] for r in results)[runs // 2]
    med["runs"] = runs
    med["all"] = [{k: r[k] for k in ("throughput", "p50_us", "p99_us")} for r in results]
    return med


def start_qemu(build, tmp):
    qmp = f"{tmp}/qmp.sock"
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "64",
         "-kernel", str(build / "guests" / "echo.elf"), "-nodefaults", "-no-user-config",
         "-display", "none", "-serial", "null", "-qmp", f"unix:{qmp},server=on,wait=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(qmp):
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("bench/api: QEMU did not start")
        time.sleep(0.02)
    return proc, qmp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--clients", type=int, default=64, choices=(16, 64, 256))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    build = pathlib.Path(args.build).resolve()
    tmp = tempfile.mkdtemp(prefix="vmmd-bench-", dir="/tmp")
    # All load comes from one user: allow its 256 connections (the default
    # per-user limit is exactly 256, with none left for the setup calls).
    vmmd = start_vmmd(build, tmp, "api", ["--limit", "max-connections-per-uid=1024"])
    sock = f"{tmp}/vmmd.sock"
    qemu = None
    try:
        for i in range(50):
            call(sock, "vm.create", {"name": f"vm-{i}", "memory": 64,
                                     "kernel": str(build / "guests" / "hello.elf")})
        rss_idle = rss_kib(vmmd.pid, "VmRSS")
        sweep = {n: median_of(build, sock, n, args.seconds, args.runs) for n in (1, 16, 64, 256)}
        many, one = sweep[args.clients], sweep[1]
        rss_peak = rss_kib(vmmd.pid)
        if shutil.which("qemu-system-x86_64"):
            qemu, qmp = start_qemu(build, tmp)
            qmp_one = load(build, qmp, 1, args.seconds, "qmp")
        else:
            qmp_one = None
    finally:
        vmmd.terminate()
        vmmd.wait()
        if qemu:
            qemu.kill()
            qemu.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    result = {"benchmark": "api", "vms_defined": 50, "time":
              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
              "vmmd_by_connections": sweep, "vmmd_many": many, "vmmd_one": one,
              "qmp_one": qmp_one,
              "vmmd_rss_idle_kib": rss_idle, "vmmd_rss_peak_kib": rss_peak,
              "targets": {"throughput": 30000, "p99_us": 2000}}
    out = build / "bench" / "api.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"api: vm.info/vm.list against vmmd with 50 VMs, medians of {args.runs} runs of "
          f"{args.seconds:.0f} s")
    print(f"  {'':28} {'req/s':>9} {'p50':>8} {'p99':>8}")
    rows = [(f"vmmd, {n} connection{'s' if n > 1 else ''}", sweep[n]) for n in sweep]
    if qmp_one:
        rows.append(("QEMU QMP query-status, 1", qmp_one))
    for label, r in rows:
        print(f"  {label:28} {r['throughput']:9.0f} {r['p50_us']:6.0f}us {r['p99_us']:6.0f}us")
    print(f"  vmmd RSS: {rss_idle} KiB idle, {rss_peak} KiB peak")
    ok = many["throughput"] >= 30000 and many["p99_us"] < 2000
    print(f"  targets (>= 30000 req/s, p99 < 2 ms with {args.clients} connections): "
          f"{'met' if ok else 'MISSED'}")
    if qmp_one:
        print(f"  vmmd/QMP single-connection throughput: "
              f"{one['throughput'] / qmp_one['throughput']:.1f}x")
    print(f"  results: {out}")


if __name__ == "__main__":
    main()
