"""Lightning progress as plain log lines, readable in ``logs/``."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


class LogProgress(Callback):
    """Progress as plain log lines (a tenth of the batches at a time, and each epoch's loss),
    readable in ``logs/`` where a progress bar would be a wall of carriage returns."""

    def on_predict_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        total = trainer.num_predict_batches[dataloader_idx]
        if (batch_idx + 1) % max(1, total // 10) == 0 or batch_idx + 1 == total:
            log.info("embedded batch %d/%d", batch_idx + 1, total)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        loss = trainer.callback_metrics.get("train_loss")
        log.info(
            "epoch %d/%d: train_loss %.4f",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            float(loss),
        )
