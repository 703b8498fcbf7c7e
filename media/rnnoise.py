"""RNNoise (the library that ``pyrnnoise`` ships) through ctypes, one state per stream.

``pyrnnoise``'s own class resamples through audiolab graphs and allocates per frame; the library it
bundles is called here directly on the 48 kHz mono 10 ms frames RNNoise works on (480 samples,
float in int16 range), into buffers the object keeps.  ctypes releases the GIL during the call
(~0.5-0.8 ms per 10 ms here), so streams run in parallel on the audio threads.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from functools import cache

import numpy as np
import numpy.typing as npt

__all__ = ["RNNOISE_FRAME", "RNNOISE_RATE", "Denoiser", "rnnoise_library"]

RNNOISE_RATE = 48000
RNNOISE_FRAME = 480  # 10 ms
_FLOAT_P = ctypes.POINTER(ctypes.c_float)


@cache
def rnnoise_library() -> ctypes.CDLL:
    """librnnoise from the installed ``pyrnnoise`` package (found without importing it: its
    ``__init__`` pulls in audiolab and matplotlib-sized dependencies)."""
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
    return lib


class Denoiser:
    """One stream's RNNoise state.  :meth:`process` takes 20 ms (960 samples, two RNNoise frames)
    of int16 mono at 48 kHz and returns the cleaned 20 ms (the object's own buffer: valid until
    the next call) and the voice probability (the higher of the two frames')."""

    def __init__(self) -> None:
        self._lib = rnnoise_library()
        self._state: int | None = self._lib.rnnoise_create(None)
        if not self._state:
            raise OSError("rnnoise_create failed")
        self._in = np.zeros(RNNOISE_FRAME, dtype=np.float32)
        self._out = np.zeros(RNNOISE_FRAME, dtype=np.float32)
        self._in_p = self._in.ctypes.data_as(_FLOAT_P)
        self._out_p = self._out.ctypes.data_as(_FLOAT_P)
        self._pcm = np.zeros(2 * RNNOISE_FRAME, dtype=np.int16)

    def process(self, pcm: npt.NDArray[np.int16]) -> tuple[npt.NDArray[np.int16], float]:
        if self._state is None:
            raise OSError("denoiser closed")
        voice = 0.0
        for half in (0, RNNOISE_FRAME):
            self._in[:] = pcm[half:half + RNNOISE_FRAME]
            voice = max(voice, float(self._lib.rnnoise_process_frame(self._state, self._out_p, self._in_p)))
            np.clip(self._out, -32768, 32767, out=self._out)
            self._pcm[half:half + RNNOISE_FRAME] = self._out
        return self._pcm, voice

    def close(self) -> None:
        if self._state is not None:
            self._lib.rnnoise_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
