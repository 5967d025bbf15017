"""Training recipes run by `pydl train <family>`."""
