"""Exceptions pydl raises beyond Python's own."""


class DeviceError(RuntimeError):
    """Tensors on different devices were mixed, or a device is unavailable."""
