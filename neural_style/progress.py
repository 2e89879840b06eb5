"""Progress display for synthesis runs: a tqdm.auto bar and, in a notebook, a live preview."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from .images import to_pil
from .synthesis import StepInfo


class Progress:
    """A ``synthesize`` callback: progress bar with the loss, and a preview every N steps.

    The preview replaces itself in place (one image in the notebook, not one per update) and
    is only shown inside IPython; elsewhere only the bar is drawn.

    Args:
        description: text in front of the bar.
        preview_every: steps between preview refreshes (0 disables the preview).
        preview_width: width of the preview in pixels.
    """

    def __init__(self, description: str = "", preview_every: int = 50, preview_width: int = 256) -> None:
        self.description, self.preview_every, self.preview_width = description, preview_every, preview_width
        self.bar: Any = None
        self.handle: Any = None

    def __call__(self, info: StepInfo) -> None:
        if self.bar is None:
            self.bar = tqdm(total=info.num_steps, desc=self.description, leave=False)
        self.bar.update(info.step - self.bar.n)
        self.bar.set_postfix(loss=f"{info.loss:.4g}", refresh=False)
        if self.preview_every and (info.step % self.preview_every == 0 or info.step == info.num_steps):
            self._preview(info)
        if info.step >= info.num_steps:
            self.close()

    def _preview(self, info: StepInfo) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        image = to_pil(info.image)
        image = image.resize((self.preview_width, max(1, round(image.height * self.preview_width / image.width))))
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)

    def close(self) -> None:
        """Close the bar and remove the preview (the caller shows the final image)."""
        if self.bar is not None:
            self.bar.close()
        if self.handle is not None:
            from IPython.display import HTML

            self.handle.update(HTML(""))
            self.handle = None
