#!/usr/bin/python3
"""bench/startup: wall time from command to guest exit, vmmd against QEMU.

Boots the same test kernel (build/guests/hello.elf: prints a greeting and
writes 0 to the isa-debug-exit port) with

  vmmd:  vmctl run hello.elf            (vmmd already running)
  QEMU:  qemu-system-x86_64 -M microvm -accel kvm -kernel hello.elf
         -device isa-debug-exit,iobase=0xf4,iosize=4 ...

interleaved in one run (the order alternates each round), checks every
run's output and exit status, and reports medians, p10/p90 and the ratio.
Results also go to BUILD/bench/startup.json.
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import start_vmmd

ROOT = pathlib.Path(__file__).resolve().parents[1]


def percentile(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def timed(cmd, want_rc, want_text):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    ms = (time.perf_counter() - t0) * 1e3
    if r.returncode != want_rc or want_text not in r.stdout:
        sys.exit(f"bench/startup: unexpected result from {cmd[0]}: rc={r.returncode}\n"
                 f"{r.stdout}\n{r.stderr}")
    return ms


def qemu_command(kernel):
    return ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "64",
            "-kernel", kernel, "-append", "exit=0", "-nodefaults", "-no-user-config",
            "-nographic", "-serial", "stdio", "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    build = pathlib.Path(args.build)
    kernel = str(build / "guests" / "hello.elf")
    if not shutil.which("qemu-system-x86_64"):
        sys.exit("bench/startup: qemu-system-x86_64 not found (scripts/install-deps.sh)")

    tmp = tempfile.mkdtemp(prefix="vmmd-bench-", dir="/tmp")
    vmmd = start_vmmd(build, tmp, "startup")
    vmctl = [str(build / "vmctl"), "--socket", f"{tmp}/vmmd.sock", "run", kernel,
             "--cmdline", "exit=0"]
    greeting = "Hello from the vmmd test guest"
    runners = {
        "vmmd": lambda: timed(vmctl, 0, greeting),
        # QEMU's isa-debug-exit exits with (V << 1) | 1.
        "qemu": lambda: timed(qemu_command(kernel), 1, greeting),
    }
    try:
        for _ in range(3):
            for run in runners.values():
                run()
        samples = {name: [] for name in runners}
        for i in range(args.rounds):
            order = list(runners) if i % 2 == 0 else list(reversed(runners))
            for name in order:
                samples[name].append(runners[name]())
    finally:
        vmmd.terminate()
        vmmd.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    stats = {name: {"median_ms": statistics.median(v), "p10_ms": percentile(v, 10),
                    "p90_ms": percentile(v, 90), "runs": len(v)}
             for name, v in samples.items()}
    ratio = stats["qemu"]["median_ms"] / stats["vmmd"]["median_ms"]
    result = {"benchmark": "startup", "kernel": "hello.elf", "rounds": args.rounds,
              "host": platform.node(), "kernel_release": platform.release(),
              "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "results": stats, "qemu_over_vmmd": ratio, "target_ratio": 5.0}
    out = build / "bench" / "startup.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"startup: boot hello.elf to guest exit, {args.rounds} interleaved rounds")
    print(f"  {'':6} {'median':>9} {'p10':>9} {'p90':>9}")
    for name, s in stats.items():
        print(f"  {name:6} {s['median_ms']:8.1f}ms {s['p10_ms']:8.1f}ms {s['p90_ms']:8.1f}ms")
    verdict = "meets" if ratio >= 5.0 else "MISSES"
    print(f"  QEMU/vmmd median ratio: {ratio:.1f}x ({verdict} the 5x target)")
    print(f"  results: {out}")


if __name__ == "__main__":
    main()
