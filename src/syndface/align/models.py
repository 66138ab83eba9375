"""dlib's model files (shipped by the `face_recognition_models` package) and their loaders.

Each model is loaded once per process (the 68-point shape predictor takes ~2 s to read), so
a shard of 500 images pays for it once, not 500 times.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
FACE_RECOGNITION_RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def model_file(name: str) -> Path:
    """Path of one of dlib's model files inside the installed face_recognition_models package.

    The package is located, not imported: its __init__ needs pkg_resources, which recent
    setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"dlib model {name} not found: install the face_recognition_models package "
            "(pip install face_recognition_models==0.3), which ships dlib's face models"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"dlib model {path} is missing: reinstall face_recognition_models")
    return path


@functools.cache
def face_detector():
    """dlib's HOG frontal face detector (the FFHQ recipe's detector)."""
    import dlib

    return dlib.get_frontal_face_detector()


@functools.cache
def shape_predictor():
    """dlib's 68-point landmark predictor."""
    import dlib

    return dlib.shape_predictor(str(model_file(SHAPE_PREDICTOR_68)))


@functools.cache
def face_recognizer():
    """dlib's ResNet face-recognition model (128-D descriptors, same person below ~0.6)."""
    import dlib

    return dlib.face_recognition_model_v1(str(model_file(FACE_RECOGNITION_RESNET)))
