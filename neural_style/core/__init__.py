"""What every layer uses: checks of the values the library is given (``checks``), the device and
precision a run uses (``devices``), image files <-> tensors in [0, 1] with parameters in PNG
metadata (``images``), and outputs checked before any work (``outputs``)."""

from .checks import check_image
from .devices import InsufficientMemoryError, autocast_dtype, resolve_device
from .images import ImageLoadError, ImageNotice, load_image, read_metadata, save_image
from .outputs import OutputError, check_output

__all__ = ["check_image", "InsufficientMemoryError", "autocast_dtype", "resolve_device", "ImageLoadError",
           "ImageNotice", "load_image", "read_metadata", "save_image", "OutputError", "check_output"]
