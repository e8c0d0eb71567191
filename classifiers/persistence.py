"""Versioned, pickle-free serialization of a :class:`~classifiers.models.TrainedModel`.

Layout: the magic ``b"LRSM"``, a 4-byte big-endian header length, a zlib-compressed JSON header
(format name and version, model version, training sizes, CV figures, calibration, vocabularies),
then a compressed ``.npz`` with the arrays (weights, IDF, out-of-fold scores and labels). Nothing
is unpickled, so loading bytes from the database cannot run code.
Errors: :class:`~classifiers.errors.ModelFormatError` for bytes that are not a model,
:class:`~classifiers.errors.IncompatibleModelError` for another format version.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import numpy as np

from classifiers.errors import IncompatibleModelError, ModelFormatError
from classifiers.features import FeatureSpace
from classifiers.models import TrainedModel

MAGIC = b"LRSM"
FORMAT_NAME = "living-review-screening-model"
FORMAT_VERSION = 1


def dumps(model: TrainedModel) -> bytes:
    """Serialize ``model`` to bytes (for the ``classifier_models`` table)."""
    space_meta, arrays = model.space.state()
    header: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "version": model.version,
        "algorithm": model.algorithm,
        "n_train": model.n_train,
        "n_pos": model.n_pos,
        "seed": model.seed,
        "cv": model.cv,
        "intercept": model.intercept,
        "calibration": list(model.calibration),
        "space": space_meta,
    }
    arrays = {**arrays, "coef": model.coef, "oof_scores": model.oof_scores,
              "oof_labels": model.oof_labels}
    buffer = io.BytesIO()
    savez: Any = np.savez_compressed  # numpy's stub types **kwds as allow_pickle
    savez(buffer, **arrays)
    head = zlib.compress(json.dumps(header).encode("utf-8"))
    return MAGIC + struct.pack(">I", len(head)) + head + buffer.getvalue()


def _header(blob: bytes) -> tuple[dict[str, Any], bytes]:
    if not isinstance(blob, bytes | bytearray | memoryview) or bytes(blob[:4]) != MAGIC:
        raise ModelFormatError("not a serialized screening model (bad magic bytes)")
    blob = bytes(blob)
    try:
        (size,) = struct.unpack(">I", blob[4:8])
        header = json.loads(zlib.decompress(blob[8 : 8 + size]))
    except (struct.error, zlib.error, ValueError) as exc:
        raise ModelFormatError(f"corrupt screening model header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        name = header.get("format") if isinstance(header, dict) else None
        raise ModelFormatError(f"not a screening model: format {name!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise IncompatibleModelError(
            f"screening model {header.get('version')!r} has format version "
            f"{header.get('format_version')!r}; this code reads version {FORMAT_VERSION}: "
            "retrain the model"
        )
    return header, blob[8 + size :]


def loads(blob: bytes) -> TrainedModel:
    """Rebuild a model written by :func:`dumps`; refuse other formats and versions."""
    header, payload = _header(blob)
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"corrupt screening model arrays: {exc}") from exc
    slope, offset = header["calibration"]
    return TrainedModel(
        version=header["version"], algorithm=header["algorithm"], n_train=header["n_train"],
        n_pos=header["n_pos"], seed=header["seed"], cv=header["cv"],
        space=FeatureSpace.from_state(header["space"], arrays),
        coef=arrays["coef"], intercept=header["intercept"], calibration=(slope, offset),
        oof_scores=arrays["oof_scores"], oof_labels=arrays["oof_labels"],
    )


def model_version(blob: bytes) -> str:
    """The model version stored in ``blob`` without rebuilding the model."""
    header, _ = _header(blob)
    return str(header["version"])
