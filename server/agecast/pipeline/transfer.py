"""Pictures between host and device: each decoded frame goes up once, and every copy is counted.

On CUDA a frame goes up through a small ring of pinned (page-locked) staging buffers: filling
one is a plain host memcpy, the upload itself is asynchronous on the device thread's stream (a
copy from pageable memory would block the thread until it finished), and a buffer is reused only
after the event recorded behind its upload has completed. Detection, alignment, inference,
paste-back and compose then stay on the device; a consumer that needs host pixels (the software
H.264 encoder, the recorder) downloads the picture once through :func:`to_host`.

:class:`Copies` counts both directions so ``bench`` can report copies per frame: 0 and 0 on a
CPU pipeline, 1 up and 1 down per frame (plus one for a take being recorded) on CUDA.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import torch

RING = 3  # staging buffers: one filling, one uploading, one spare for a slow device thread


class Copies:
    """Host→device and device→host copies (and bytes), counted where they happen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.uploads = self.downloads = 0
        self.upload_bytes = self.download_bytes = 0

    def add(self, direction: str, nbytes: int) -> None:
        with self._lock:
            if direction == "h2d":
                self.uploads += 1
                self.upload_bytes += nbytes
            elif direction == "d2h":
                self.downloads += 1
                self.download_bytes += nbytes
            else:
                raise ValueError(f"copy direction {direction!r}: use h2d or d2h")

    def reset(self) -> None:
        with self._lock:
            self.uploads = self.downloads = 0
            self.upload_bytes = self.download_bytes = 0

    def per_frame(self, frames: int) -> dict[str, Any]:
        """Copies (and MB) per frame over ``frames`` frames."""
        n = max(1, frames)
        with self._lock:
            return {
                "frames": frames,
                "h2d_per_frame": round(self.uploads / n, 3),
                "d2h_per_frame": round(self.downloads / n, 3),
                "h2d_mb_per_frame": round(self.upload_bytes / n / 2**20, 3),
                "d2h_mb_per_frame": round(self.download_bytes / n / 2**20, 3),
            }


def same_device(a: torch.device, b: torch.device) -> bool:
    """``cuda`` and ``cuda:0`` (the current device) are one device here."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def to_host(tensor: torch.Tensor, copies: Copies | None = None) -> torch.Tensor:
    """``tensor`` on the host: itself when it is there already, else one counted download."""
    if tensor.device.type == "cpu":
        return tensor
    if copies is not None:
        copies.add("d2h", tensor.numel() * tensor.element_size())
    return tensor.cpu()


@dataclass
class _Staging:
    buffer: torch.Tensor
    done: Any = None  # torch.cuda.Event recorded after the upload from ``buffer``


@dataclass
class Uploader:
    """Uploads host pictures to ``device``, counting each; a no-op where they are already."""

    device: torch.device
    copies: Copies = field(default_factory=Copies)
    ring: int = RING
    _staging: list[_Staging] = field(default_factory=list)
    _next: int = 0

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if same_device(image.device, self.device):
            return image
        self.copies.add("h2d", image.numel() * image.element_size())
        if self.device.type != "cuda" or image.device.type != "cpu":
            return image.to(self.device)
        return self._pinned_upload(image)

    def _pinned_upload(self, image: torch.Tensor) -> torch.Tensor:
        staging = self._slot(image)
        if staging.done is not None:
            staging.done.synchronize()  # its last upload has left the buffer
        staging.buffer.copy_(image)
        with torch.cuda.device(self.device):
            uploaded = staging.buffer.to(self.device, non_blocking=True)
            staging.done = torch.cuda.Event()
            staging.done.record()  # on the current stream, behind the copy
        return uploaded

    def _slot(self, image: torch.Tensor) -> _Staging:
        if len(self._staging) < self.ring:
            self._staging.append(_Staging(_pinned_like(image)))
        staging = self._staging[self._next % len(self._staging)]
        self._next += 1
        if staging.buffer.shape != image.shape or staging.buffer.dtype != image.dtype:
            if staging.done is not None:
                staging.done.synchronize()
            staging.buffer, staging.done = _pinned_like(image), None
        return staging


def _pinned_like(image: torch.Tensor) -> torch.Tensor:
    return torch.empty(image.shape, dtype=image.dtype, pin_memory=True)
