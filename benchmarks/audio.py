"""Audio benchmarks of issue 14, one entry: noise suppression and captions.

    .venv/bin/python -m benchmarks.audio                       # both parts, each with its defaults
    .venv/bin/python -m benchmarks.audio --part noise [ARGS]   # ARGS: benchmarks/noise_suppression.py's
    .venv/bin/python -m benchmarks.audio --part captions [ARGS]  # ARGS: benchmarks/captions.py's
    .venv/bin/python -m benchmarks.audio --part all --noise-args "--streams 1,4" --captions-args "--speakers 1,2"

- noise: CPU per suppressed microphone (Opus decode + RNNoise + Opus encode per 20 ms, in one
  thread, against pyrnnoise's stock library; and live through NoiseSuppressor and the audio
  processes), the added latency (processing, and RNNoise's and the re-encode's own delay), the SNR
  gain through the codecs on recorded and synthesised speech (benchmarks/noise_suppression.py).
- captions: recogniser real-time factor, caption latency, partial cadence, speakers held
  (benchmarks/captions.py, with its own arguments).

A thin dispatcher: each part is its module's ``main(argv)``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable


def _noise(argv: list[str]) -> int:
    from benchmarks import noise_suppression

    return noise_suppression.main(argv)


def _captions(argv: list[str]) -> int:
    from benchmarks import captions

    return int(captions.main(argv) or 0)


PARTS: dict[str, Callable[[list[str]], int]] = {"noise": _noise, "captions": _captions}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=[*PARTS, "all"], default="all")
    ap.add_argument("--noise-args", default="", help="with --part all: arguments for the noise part")
    ap.add_argument("--captions-args", default="", help="with --part all: arguments for the captions part")
    args, rest = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.part != "all":
        own = shlex.split(getattr(args, f"{args.part}_args"))
        return PARTS[args.part](own + rest)
    if rest:
        ap.error(f"with --part all, give each part's arguments with --noise-args / --captions-args: {rest}")
    rc = 0
    for name, run in PARTS.items():
        print(f"== {name}", flush=True)
        rc = run(shlex.split(getattr(args, f"{name}_args"))) or rc
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
