"""Per-epoch metrics to a CSV file and, optionally, TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graft.errors import ConfigError


class EpochLogger:
    """Writes one row per epoch. The CSV is rewritten atomically so it is never half a row."""

    def __init__(self, csv_path: str | None, tensorboard: str | None, enabled: bool = True) -> None:
        self.csv_path = Path(csv_path) if csv_path and enabled else None
        self.rows: list[dict[str, Any]] = []
        self.writer: Any = None
        if tensorboard and enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError(
                    "--tensorboard needs the tensorboard package: pip install tensorboard"
                ) from e
            self.writer = SummaryWriter(tensorboard)
        self.step = 0

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.step += 1
        if self.csv_path is not None:
            self._write_csv()
        if self.writer is not None:
            for k, v in row.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    self.writer.add_scalar(k, v, self.step)

    def _write_csv(self) -> None:
        from graft.io import atomic_write_text, records_to_csv

        assert self.csv_path is not None
        atomic_write_text(self.csv_path, records_to_csv(self.rows))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
