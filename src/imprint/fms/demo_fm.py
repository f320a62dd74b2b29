"""The embedded default's foundation model: a small CNN trained with Lightning on some digit
classes only, so that the others are new to it, as MNIST is to an ImageNet model."""

from __future__ import annotations

import os

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from imprint.fms.backbones import DEMO_PREPROCESSING, DemoCNN
from imprint.io import atomic_path
from imprint.progress import LogProgress


class DemoClassifier(L.LightningModule):
    """Cross-entropy training of ``DemoCNN`` on the seen classes."""

    def __init__(self, n_classes: int, width: int = 32, learning_rate: float = 2e-3) -> None:
        super().__init__()
        self.model = DemoCNN(n_classes, width=width)
        self.learning_rate = learning_rate

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = torch.nn.functional.cross_entropy(self.model(images), labels)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


def train_demo_fm(
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[int],
    path: str | os.PathLike,
    epochs: int = 30,
    seed: int = 0,
    width: int = 32,
) -> float:
    """Train on the images of ``classes`` and save the weights to ``path``; returns the final
    training accuracy."""
    L.seed_everything(seed, workers=True)
    keep = np.isin(labels, classes)
    x = DEMO_PREPROCESSING(torch.from_numpy(images[keep]))
    y = torch.from_numpy(np.searchsorted(np.array(sorted(classes)), labels[keep]))
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    module = DemoClassifier(len(classes), width=width)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[LogProgress()],
    )
    trainer.fit(module, loader)
    module.eval()
    with torch.no_grad():
        accuracy = (module.model(x).argmax(1) == y).float().mean().item()
    with atomic_path(path) as temporary:
        torch.save(module.model.state_dict(), temporary)
    return accuracy
