"""textshift: carry a trained text classifier over to a new domain, and measure whether it helped."""

__version__ = "0.1.0"

from textshift.data import TextData, read_labeled, read_texts  # noqa: E402
from textshift.errors import TextshiftError  # noqa: E402
from textshift.model import Classifier  # noqa: E402
from textshift.training import TrainConfig, train  # noqa: E402

__all__ = ["Classifier", "TextData", "TextshiftError", "TrainConfig", "__version__", "read_labeled", "read_texts",
           "train"]
