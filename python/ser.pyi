"""Speech emotion recognition: the shipped model or any ser checkpoint, from Python.

The same code as the ``ser-infer`` and ``ser-features`` commands (a Rust extension); work runs
with the GIL released, so threads classify in parallel.

    >>> import ser
    >>> clf = ser.Classifier()                 # the shipped model (built in)
    >>> clf.predict("clip.wav")["label"]
    'neutral'
"""

import os
from typing import Any, Literal, Optional, TypedDict, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str
SHIPPED_MODEL: str
"""Where the shipped model's files are kept in the repository (models/<name>, with its
MODEL_CARD.md and LICENSE)."""
HAS_SHIPPED_MODEL: bool
"""Whether this build holds the shipped model (a build without it needs a checkpoint path)."""

Audio = Union[str, os.PathLike[str], bytes, npt.ArrayLike]
"""A path, an audio file's bytes (WAV, FLAC, MP3, Ogg, AAC/M4A, AIFF, CAF), or float samples in
[-1, 1], shape (n,) or (n, channels), with ``sample_rate``."""
Adapt = Literal["off", "recording", "together"]
"""Test-time speaker normalisation: whose speech the windows are standardised around."""

class SerError(ValueError):
    """Audio or a checkpoint ser cannot use; the message names the file (or ``<array>``,
    ``<bytes>``) and the cause."""

class Prediction(TypedDict):
    label: Optional[str]
    """The most probable class; None when every window is silent."""
    confidence: Optional[float]
    probabilities: Optional[dict[str, float]]
    silent: bool
    windows: int
    silent_windows: int
    start_s: float
    end_s: float

class Window(TypedDict):
    start_s: float
    end_s: float
    level_dbfs: float
    silent: bool
    label: Optional[str]
    confidence: Optional[float]
    probabilities: Optional[dict[str, float]]

class Classifier:
    """A ser checkpoint ready to classify audio.

    ``Classifier()`` is the shipped model (``SHIPPED_MODEL``, built in; see its MODEL_CARD.md); ``Classifier(path)`` loads a checkpoint directory that ``ser-model train``
    or ``ser-model ensemble`` wrote. Load once; call it from any number of threads.
    """

    def __init__(self, path: Optional[Union[str, os.PathLike[str]]] = None) -> None: ...
    @property
    def labels(self) -> list[str]:
        """The classes, in the order of the probabilities."""
    @property
    def path(self) -> str:
        """The checkpoint's directory."""
    @property
    def sha256(self) -> str:
        """The SHA-256 of the weights that answer (model.safetensors)."""
    @property
    def window_seconds(self) -> Optional[float]:
        """Seconds of audio the network hears at once."""
    @property
    def info(self) -> list[dict[str, Any]]:
        """Each member network's model.json: labels, feature config, training provenance."""
    @overload
    def predict(
        self,
        x: Audio,
        sample_rate: Optional[int] = None,
        *,
        window: Optional[float] = None,
        hop: Optional[float] = None,
        silence_dbfs: Optional[float] = None,
        first_window: bool = False,
        max_duration: Optional[float] = None,
        adapt: Adapt = "off",
    ) -> Prediction: ...
    @overload
    def predict(
        self,
        x: list[Union[str, os.PathLike[str]]],
        sample_rate: None = None,
        *,
        window: Optional[float] = None,
        hop: Optional[float] = None,
        silence_dbfs: Optional[float] = None,
        first_window: bool = False,
        max_duration: Optional[float] = None,
        adapt: Adapt = "off",
    ) -> list[Prediction]:
        """The emotion of one recording, or of each file in a list (decoded and classified in
        parallel, as ``ser-infer predict`` does; the first bad file raises SerError).

        Long audio is cut into windows (``window`` seconds, default the model's input, every
        ``hop``, default half a window) and their probabilities averaged; windows whose loudest
        100 ms is quieter than ``silence_dbfs`` (default -50) are skipped. The dict is the JSON line
        ``ser-infer predict --format jsonl`` prints, without the path.

        ``adapt`` (test-time speaker normalisation, ``ser-infer predict --adapt``): "recording"
        standardises each recording's windows around its own speech, "together" all the listed
        files' around theirs (one speaker's files), instead of the training statistics. It
        helped on corpora unlike the model's and cost on speakers like its own.
        """
    @overload
    def timeline(
        self,
        x: Audio,
        sample_rate: Optional[int] = None,
        *,
        window: Optional[float] = None,
        hop: Optional[float] = None,
        silence_dbfs: Optional[float] = None,
        max_duration: Optional[float] = None,
        as_frame: Literal[False],
        adapt: Adapt = "off",
    ) -> list[Window]: ...
    @overload
    def timeline(
        self,
        x: Audio,
        sample_rate: Optional[int] = None,
        *,
        window: Optional[float] = None,
        hop: Optional[float] = None,
        silence_dbfs: Optional[float] = None,
        max_duration: Optional[float] = None,
        as_frame: Optional[bool] = None,
        adapt: Adapt = "off",
    ) -> Any:
        """The emotion of each window of a recording, as ``ser-infer timeline`` prints them: a
        pandas DataFrame (a row per window) when pandas is installed and ``as_frame`` is not
        False, else a list of dicts. ``adapt="recording"`` standardises the windows around the
        recording's own speech (``ser-infer timeline --adapt``)."""
    def features(self, x: Audio, sample_rate: Optional[int] = None) -> npt.NDArray[np.float32]:
        """The network's input for ``x`` (frames x coefficients), with this checkpoint's feature
        config."""

def features(
    x: Audio,
    sample_rate: Optional[int] = None,
    config: Optional[Union[str, os.PathLike[str], dict[str, Any], Classifier]] = None,
) -> npt.NDArray[np.float32]:
    """The feature matrix of ``x`` (frames x coefficients, float32): its ``ravel()`` is the
    ``features`` column of the feature table's row for that file, and the array
    ``ser-features features --out x.npy`` writes.

    ``config``: None (the shipped model's feature config), a features YAML file (a pipeline's
    ``artifacts/<p>/pipeline/features.yaml``), a dict of its keys, or a Classifier (its
    checkpoint's config).
    """
