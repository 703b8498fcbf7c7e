"""Instructions per forwarded packet, counted (not timed): this checkout against another revision.

    .venv/bin/python -m benchmarks.packet_cost                       # HEAD's tree vs 02a4df0
    .venv/bin/python -m benchmarks.packet_cost --before <rev> --subs 1 20 --packets 4000

Why counted: the timed harnesses (``benchmarks.forwarding``, ``../shared/bench/janus``) spread by
+-15% between runs of one tree on this 2-core VM, and not at all when another process shares the
machine; a before/after of a few percent drowns in that. Valgrind's callgrind counts the
instructions a process executes, whatever else runs beside it.

What runs: for each tree (the working tree, and ``git archive <rev>`` with this checkout's compiled
extensions copied in: the C of the fan-out must be the same), ``packet_cost_driver`` negotiates one
publisher transport and N subscriber transports offline (real SDP and SRTP, sockets on 127.0.0.1:
``tests/sfu/offline.py``), then feeds P plain VP8 RTP packets into the publisher transport's receive
entry (the point after SRTP decryption), so every subscriber on the compiled fan-out rewrites,
encrypts and sends each one. Each (tree, N) runs twice under callgrind, with P packets and with none:
the difference over P is the cost of one incoming packet for N subscribers, start-up excluded.
From two N: the cost per extra subscriber (the fan-out's work per forwarded packet) and the cost of
the receive path alone (per incoming packet). Printed for each tree, the ratio after/before, and
the cost per forwarded packet at ``--at`` subscribers (default 50, the Janus comparison's N).

Not counted: the kernel (sendmmsg's work in it is the same for both trees), SRTP decryption of the
incoming packet and the UDP receive (before the entry point; unchanged code), timers (periodic work
is measured by ``--idle``: CPU per second of the same transports with no packets, by the clock).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "packet_cost_driver.py"
EXTENSIONS = ("sfu/_fastpath", "sfu/_sendmmsg", "benchmarks/_rxbatch")


def archive(rev: str, into: Path) -> Path:
    """``rev``'s tree in ``into`` with this checkout's compiled extensions (the same C)."""
    tree = into / rev
    tree.mkdir(parents=True)
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=data, check=True)
    for stem in EXTENSIONS:
        for built in ROOT.glob(stem + ".*.so"):
            shutil.copy2(built, tree / built.relative_to(ROOT))
    return tree


def instructions(tree: Path, subs: int, packets: int, mode: str = "count") -> float:
    """Callgrind's total instruction count of one driver run (``mode`` "count"), or the driver's
    CPU milliseconds per second of idle transports (``mode`` "idle", no valgrind)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, str(DRIVER), str(tree), str(subs), str(packets), mode]
    if mode == "idle":
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        return float(out.split()[-1])
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as f:
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={f.name}", *cmd],
                       check=True, capture_output=True, env=env)
        text = Path(f.name).read_text(errors="replace")
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError("callgrind wrote no totals")
    return float(m.group(1))


def measure(tree: Path, subs: Sequence[int], packets: int) -> dict[int, float]:
    """Instructions per incoming packet for each N."""
    return {n: (instructions(tree, n, packets) - instructions(tree, n, 0)) / packets for n in subs}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.packet_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="02a4df0", help="the revision to compare with (default 02a4df0: "
                   "before the media core's round two, issue 12)")
    p.add_argument("--subs", type=int, nargs=2, default=[1, 20], metavar=("N1", "N2"))
    p.add_argument("--packets", type=int, default=4000)
    p.add_argument("--at", type=int, default=50, help="report the cost per forwarded packet at this N")
    p.add_argument("--idle", type=int, default=50, metavar="N",
                   help="also the CPU per second of N idle subscribers (by the clock; 0: skip)")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed (apt-get install valgrind)", file=sys.stderr)
        return 2
    n1, n2 = args.subs
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {args.before: archive(args.before, Path(tmp)), "this tree": ROOT}
        for name, tree in trees.items():
            per_in = measure(tree, (n1, n2), args.packets)
            per_sub = (per_in[n2] - per_in[n1]) / (n2 - n1)
            receive = per_in[n1] - n1 * per_sub
            row = {"receive": receive, "per_sub": per_sub,
                   "fwd_at": per_sub + receive / args.at, f"in_{n1}": per_in[n1], f"in_{n2}": per_in[n2]}
            if args.idle:
                row["idle_ms_s"] = instructions(tree, args.idle, 0, mode="idle")
            results[name] = row
            print(f"{name}: receive path {receive:,.0f} instr per incoming packet, fan-out {per_sub:,.0f} per "
                  f"forwarded packet, {row['fwd_at']:,.0f} per forwarded packet at N = {args.at}"
                  + (f"; {args.idle} idle subscribers {row['idle_ms_s']:.2f} ms CPU/s" if args.idle else ""),
                  flush=True)
    before, after = results[args.before], results["this tree"]
    print(f"ratio this tree / {args.before}: receive path {after['receive'] / before['receive']:.3f}, "
          f"fan-out per forwarded packet {after['per_sub'] / before['per_sub']:.3f}, "
          f"per forwarded packet at N = {args.at}: {after['fwd_at'] / before['fwd_at']:.3f}"
          + (f", idle CPU {after['idle_ms_s'] / before['idle_ms_s']:.2f}" if args.idle else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
