"""Data: image folders and tables into train/val/test :class:`Dataset` objects."""

from graft.data.base import Dataset, Samples, Task

__all__ = ["Dataset", "Samples", "Task"]
