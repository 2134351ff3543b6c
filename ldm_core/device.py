"""Device choice and mixed precision for training and sampling.

- :func:`resolve_device` turns ``"auto" | "cpu" | "cuda"`` into a ``torch.device``
  and fails with a clear message when CUDA is asked for but absent.
- :func:`autocast` returns the mixed-precision context used around forward passes:
  bfloat16 autocast on CUDA (no gradient scaler needed: bfloat16 has float32's
  exponent range), a no-op everywhere else, so CPU runs stay bitwise reproducible.

Why not ``torch.autocast`` directly: it warns on CPU with dtypes the CPU backend
does not support and needs the device type spelled out at every call site; one
helper keeps the rule ("AMP on CUDA only") in one place.

References
----------
- PyTorch documentation, "Automatic Mixed Precision package - torch.amp".
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["DEVICES", "resolve_device", "amp_enabled", "autocast", "describe_device"]

DEVICES = ("auto", "cpu", "cuda")  # allowed device names


# device

def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device named by ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"} or torch.device, default "auto"
        "auto": CUDA when available, else CPU. "cuda" may carry an index ("cuda:1").

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If ``device`` is not one of ``DEVICES`` (optionally "cuda:<index>").
    RuntimeError
        If CUDA is requested but ``torch.cuda.is_available()`` is False.
    """
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={name!r} was requested but CUDA is not available on this machine; "
                "use device='auto' (falls back to CPU) or device='cpu'."
            )
        return torch.device(name)
    raise ValueError(f"device must be one of {DEVICES} (or 'cuda:<index>'), got {device!r}.")


def describe_device(device: torch.device) -> str:
    """Human-readable device name, e.g. ``"cuda (NVIDIA H100 80GB HBM3)"`` or ``"cpu (2 threads)"``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


# mixed precision

def amp_enabled(device: torch.device, *, amp: bool) -> bool:
    """True when mixed precision should run: ``amp`` asked for and ``device`` is CUDA with bfloat16."""
    return bool(amp) and device.type == "cuda" and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, *, enabled: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA when ``enabled``; otherwise a context that does nothing.

    Parameters
    ----------
    device : torch.device
        Where the forward pass runs.
    enabled : bool
        Usually ``amp_enabled(device, amp=...)``.

    Returns
    -------
    context manager
    """
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
