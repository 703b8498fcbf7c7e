"""RNNoise (the library that ``pyrnnoise`` ships) through ctypes, one state per stream.

``pyrnnoise``'s own class resamples through audiolab graphs and allocates per frame; the library it
bundles is called here directly on the 48 kHz mono 10 ms frames RNNoise works on (480 samples,
float in int16 range), into buffers the object keeps.  ctypes releases the GIL during the call, so
streams run in parallel on the audio threads.

That library is RNNoise 0.2 built as generic C, which computes its layers from their float weights:
11.6 MB read per 10 ms frame, ~0.6 ms of a core waiting on memory.  ``media/_rnnoise_accel.c`` (a
compiled extension of this package, loaded first with RTLD_GLOBAL) takes over librnnoise's matrix
products with the model's int8 weights and AVX2 / AVX-512 VNNI kernels (~0.2 ms per 10 ms), and
converts a whole 20 ms int16 frame in one call.  Without it (not built; ``UROK_RNNOISE_ACCEL=0``)
the stock library runs.  :func:`rnnoise_info` says which.

Fidelity (:func:`set_fidelity`, through the accelerator): librnnoise high-passes its input (~25 Hz,
second order) before anything else.  The audio here comes from an Opus decoder, whose publisher's
encoder already removed DC and rumble; the filter's phase shift reaches into a man's fundamental
and adds to the publisher's own high-pass, and through the WebRTC path it was most of what
suppression cost clean speech (SI-SDR 3.0 dB lower than the raw track; 0.55 dB without it) and of
what it did not gain in noise (pink noise at 0 dB SNR +3.1 dB, +5.4 without it).  So by default
the input goes to RNNoise unfiltered (``UROK_RNNOISE_KEEP_LOW=0``: librnnoise's filter).
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
from functools import cache

import numpy as np
import numpy.typing as npt

__all__ = ["RNNOISE_FRAME", "RNNOISE_RATE", "Denoiser", "rnnoise_info", "rnnoise_library", "set_fidelity"]

log = logging.getLogger("urok.media")

RNNOISE_RATE = 48000
RNNOISE_FRAME = 480  # 10 ms
_FLOAT_P = ctypes.POINTER(ctypes.c_float)
_KERNELS = {0: "int8 portable C", 1: "int8 AVX2", 2: "int8 AVX-512 VNNI"}


@cache
def accelerator() -> ctypes.CDLL | None:
    """``media/_rnnoise_accel`` loaded into the global symbol scope (before librnnoise: its
    ``rnn_compute_linear_c`` then takes librnnoise's calls), or None (not built, or switched off
    by ``UROK_RNNOISE_ACCEL=0``)."""
    if os.environ.get("UROK_RNNOISE_ACCEL", "1") == "0":
        return None
    spec = importlib.util.find_spec("media._rnnoise_accel")
    if spec is None or not spec.origin:
        log.info("media._rnnoise_accel is not built: RNNoise runs its generic float build (~3x the CPU)")
        return None
    try:
        lib = ctypes.CDLL(spec.origin, mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        log.warning("media._rnnoise_accel does not load (%s): RNNoise runs its generic float build", e)
        return None
    lib.urok_rnnoise_accel_level.restype = ctypes.c_int
    lib.urok_rnnoise_accel_set_level.argtypes = [ctypes.c_int]
    lib.urok_rnnoise_accel_set_level.restype = ctypes.c_int
    lib.urok_rnnoise_accel_calls.restype = ctypes.c_ulonglong
    lib.urok_rnnoise_process_pcm.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                             ctypes.c_void_p, ctypes.c_int]
    lib.urok_rnnoise_process_pcm.restype = ctypes.c_float
    lib.urok_rnnoise_register.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.urok_rnnoise_register.restype = None
    lib.urok_rnnoise_fidelity.argtypes = [ctypes.c_int]
    lib.urok_rnnoise_fidelity.restype = ctypes.c_int
    return lib


_KEEP_LOW, _NO_PITCH_FILTER = 1, 2  # media/_rnnoise_accel.c's UROK_* flags


def set_fidelity(*, keep_low: bool = True, pitch_filter: bool = True) -> bool:
    """For every stream of this process: ``keep_low``: RNNoise's input high-pass left out (see the
    top); ``pitch_filter``: RNNoise's comb filter on the pitch harmonics kept (it removes noise
    between them).  False where the accelerator is not loaded (the stock library always filters)."""
    accel = accelerator()
    if accel is None:
        return False
    accel.urok_rnnoise_fidelity((_KEEP_LOW if keep_low else 0) | (0 if pitch_filter else _NO_PITCH_FILTER))
    return True


@cache
def rnnoise_library() -> ctypes.CDLL:
    """librnnoise from the installed ``pyrnnoise`` package (found without importing it: its
    ``__init__`` pulls in audiolab and matplotlib-sized dependencies)."""
    accelerator()  # first: see accelerator()
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("pyrnnoise is not installed")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "librnnoise.so")
    lib = ctypes.CDLL(path)
    lib.rnnoise_create.argtypes = [ctypes.c_void_p]
    lib.rnnoise_create.restype = ctypes.c_void_p
    lib.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    lib.rnnoise_process_frame.argtypes = [ctypes.c_void_p, _FLOAT_P, _FLOAT_P]
    lib.rnnoise_process_frame.restype = ctypes.c_float
    accel = accelerator()
    if accel is not None:
        # librnnoise's own filters, for the accelerator to call where they stay on (dlsym on this
        # handle finds librnnoise's definitions, not the accelerator's)
        accel.urok_rnnoise_register(ctypes.cast(lib.rnn_biquad, ctypes.c_void_p),
                                    ctypes.cast(lib.rnn_pitch_filter, ctypes.c_void_p))
        set_fidelity(keep_low=os.environ.get("UROK_RNNOISE_KEEP_LOW", "1") != "0")
    return lib


@cache
def rnnoise_info() -> dict[str, str | bool]:
    """How RNNoise runs in this process: ``accelerated`` (librnnoise's products really went
    through the int8 kernels: checked on one frame) and ``kernel``; accelerated, the fidelity
    switches too (``keep_low``, ``pitch_filter``: :func:`set_fidelity` at the time of the first call)."""
    accel = accelerator()
    if accel is None:
        return {"accelerated": False, "kernel": "stock (generic C, float weights)"}
    before = accel.urok_rnnoise_accel_calls()
    d = Denoiser()
    # a tone (RNNoise skips its network on silence)
    d.process((1000 * np.sin(np.arange(2 * RNNOISE_FRAME) * 0.1)).astype(np.int16))
    d.close()
    if accel.urok_rnnoise_accel_calls() == before:  # librnnoise was bound before this library loaded
        return {"accelerated": False, "kernel": "stock (the accelerator did not bind)"}
    flags = accel.urok_rnnoise_fidelity(-1)
    return {"accelerated": True, "kernel": _KERNELS.get(accel.urok_rnnoise_accel_level(), "?"),
            "keep_low": bool(flags & _KEEP_LOW), "pitch_filter": not flags & _NO_PITCH_FILTER}


# The guard against RNNoise removing a voice it hears (docs/benchmarks.md: in a babble of similar
# voices RNNoise 0.2 attenuated the speaker's loud frames by ~38 dB while its own voice probability
# said ~0.7).  A frame is suspect when RNNoise says voice (> GUARD_VOICE), the input is not quiet
# (> GUARD_LEVEL, ~-50 dBFS) and the output is GUARD_CUT below it; after GUARD_HOLD suspect frames
# in a row the input (20 ms late, as RNNoise's output is) is mixed back at GUARD_DRY, ramped over
# a frame each way.  Noise in pauses (voice probability ~0) and speech kept (attenuation of a few
# dB: pink noise at 0 dB SNR costs a voiced frame ~3 dB) never trigger it.  GUARD_CUT 10 dB rather
# than 20: in babble RNNoise also takes the speaker down by 10-20 dB, where 20 dB left it removed
# (the WebRTC path, six loops of the clip: espeak babble at 0 dB SNR, SI-SDR -0.8 dB raw -> -1.0
# cleaned with 20 dB, +1.0 with 10 dB; the recorded voices' babble at 10 dB 6.0 -> 3.1 / 5.1;
# clean speech, pink noise and espeak babble at 10 dB unchanged: not one frame more mixed).
GUARD_VOICE = 0.5
GUARD_LEVEL = 1e4  # mean square of int16 samples
GUARD_CUT = 0.1  # 10 dB
GUARD_HOLD = 3
GUARD_DRY = 0.7


class Denoiser:
    """One stream's RNNoise state.  :meth:`process` takes 20 ms (960 samples, two RNNoise frames)
    of int16 mono at 48 kHz and returns the cleaned 20 ms (the object's own buffer: valid until
    the next call) and the voice probability (the higher of the two frames').  ``guard``: mix the
    input back where RNNoise removes a voice it detects (see GUARD_*); :attr:`guarded` counts the
    frames it did."""

    def __init__(self, *, guard: bool = True) -> None:
        self._lib = rnnoise_library()
        self._accel = accelerator()
        self._state: int | None = self._lib.rnnoise_create(None)
        if not self._state:
            raise OSError("rnnoise_create failed")
        self._process_frame = ctypes.cast(self._lib.rnnoise_process_frame, ctypes.c_void_p).value
        self._in = np.zeros(RNNOISE_FRAME, dtype=np.float32)
        self._out = np.zeros(RNNOISE_FRAME, dtype=np.float32)
        self._in_p = self._in.ctypes.data_as(_FLOAT_P)
        self._out_p = self._out.ctypes.data_as(_FLOAT_P)
        self._pcm = np.zeros(2 * RNNOISE_FRAME, dtype=np.int16)
        self.guard = guard
        self.guarded = 0
        self._dry = np.zeros(2 * RNNOISE_FRAME, dtype=np.float32)  # the last input: RNNoise's output is 20 ms late
        self._suspect = 0
        self._gain = 0.0  # of the input mixed back
        self._mix = np.zeros(2 * RNNOISE_FRAME, dtype=np.float32)

    def _guarded(self, pcm: npt.NDArray[np.int16], voice: float) -> None:
        """The guard on :attr:`_pcm` (RNNoise's output for the frame before ``pcm``)."""
        dry = self._dry
        p_in = float(np.dot(dry, dry)) / len(dry)
        wet = self._mix
        wet[:] = self._pcm
        p_out = float(np.dot(wet, wet)) / len(wet)
        suspect = voice > GUARD_VOICE and p_in > GUARD_LEVEL and p_out < p_in * GUARD_CUT
        self._suspect = min(GUARD_HOLD, self._suspect + 1) if suspect else max(0, self._suspect - 1)
        target = GUARD_DRY if self._suspect >= GUARD_HOLD else 0.0
        if target or self._gain:
            wet += np.linspace(self._gain, target, len(wet), dtype=np.float32) * dry
            np.clip(wet, -32768, 32767, out=wet)
            self._pcm[:] = np.rint(wet)
            self.guarded += 1
        self._gain = target
        dry[:] = pcm

    def process(self, pcm: npt.NDArray[np.int16]) -> tuple[npt.NDArray[np.int16], float]:
        if self._state is None:
            raise OSError("denoiser closed")
        if len(pcm) != len(self._pcm):
            raise ValueError(f"a frame is {len(self._pcm)} samples, not {len(pcm)}")
        if self._accel is not None:
            if pcm.dtype != np.int16 or not pcm.flags.c_contiguous:
                pcm = np.ascontiguousarray(pcm, dtype=np.int16)
            voice = float(self._accel.urok_rnnoise_process_pcm(self._process_frame, self._state, pcm.ctypes.data,
                                                               self._pcm.ctypes.data, 2))
        else:
            voice = 0.0
            for half in (0, RNNOISE_FRAME):
                self._in[:] = pcm[half:half + RNNOISE_FRAME]
                voice = max(voice, float(self._lib.rnnoise_process_frame(self._state, self._out_p, self._in_p)))
                np.clip(self._out, -32768, 32767, out=self._out)
                self._pcm[half:half + RNNOISE_FRAME] = np.rint(self._out)
        if self.guard:
            self._guarded(pcm, voice)
        return self._pcm, voice

    def close(self) -> None:
        if self._state is not None:
            self._lib.rnnoise_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
