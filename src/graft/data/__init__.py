"""Data: image folders and tables into train/val/test :class:`Dataset` objects."""

from graft.data.base import Dataset, Samples, Task
from graft.data.images import IMAGE_EXTENSIONS
from graft.data.loading import load
from graft.data.transforms import (
    ImageDataset,
    ImageTransform,
    build_transform,
    load_image,
    transform_identity,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "Dataset",
    "ImageDataset",
    "ImageTransform",
    "Samples",
    "Task",
    "build_transform",
    "load",
    "load_image",
    "transform_identity",
]
