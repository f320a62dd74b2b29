"""Throughput of the Lightning embedding pipeline against a bare torch loop and a per-image
PIL-transform loader, on the same model and images, measured in one process.

- lightning: ``embed_images`` (ImageArrayDataModule -> Trainer.predict -> shard writer -> merge)
- bare loop: uint8 batches moved to the device, resized and normalised there, one forward each
- PIL loader: the same resize, crop and normalisation as torchvision transforms on each PIL
  image in a DataLoader

All three use the FM's own preprocessing (resize, crop, normalise) and the same precision
(``--precision``: float32, the paper's, or bf16 autocast). The FM is any torchvision or timm
model (``--source``, ``--model``) with random weights (same speed, no download).

    python benchmarks/bench_embed.py --model resnet18 --images 256         # CPU: keep it small
    python benchmarks/bench_embed.py --model vit_b_16 --images 20000 --device cuda
    python benchmarks/bench_embed.py --source timm --model convnext_femto --device cuda
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from host import describe
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from imprint.fms.backbones import fetch_weights, library_fm
from imprint.fms.data import save_images
from imprint.fms.embed import ImageArrayDataModule, embed_images
from imprint.fms.fm_spec import fm_spec


class PILImages(Dataset):
    def __init__(self, images: np.ndarray, transform) -> None:
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(Image.fromarray(self.images[i]))


def autocast(device: str, precision: str):
    if precision == "bf16-mixed":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def timed(function, device: str) -> float:
    start = time.perf_counter()
    function()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=["torchvision", "timm"], default="torchvision")
    parser.add_argument("--model", default="resnet18", help="the model's name in its library")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=32, help="side of the stored square RGB images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the PIL loader"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    parser.add_argument("--skip-pil", action="store_true", help="leave out the (slow) PIL loader")
    args = parser.parse_args()

    spec = fm_spec("bench", {"source": args.source, "model": args.model, "weights": "random"})
    with tempfile.TemporaryDirectory() as tmp:
        fetch_weights(spec, Path(tmp) / "random.pth")
        model, preprocessing = library_fm(spec, Path(tmp) / "random.pth")
    model = model.to(args.device)
    transform = T.Compose(
        [
            T.Resize(preprocessing.resize, T.InterpolationMode(preprocessing.interpolation)),
            T.CenterCrop(preprocessing.crop),
            T.ToTensor(),
            T.Normalize(preprocessing.mean, preprocessing.std),
        ]
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, args.size, args.size, 3), dtype=np.uint8)

    def bare_loop() -> None:
        stored = torch.from_numpy(images)
        with torch.inference_mode(), autocast(args.device, args.precision):
            for start in range(0, len(stored), args.batch_size):
                batch = stored[start : start + args.batch_size].to(args.device, non_blocking=True)
                model(preprocessing(batch)).float().cpu()

    def pil_loader() -> None:
        loader = DataLoader(
            PILImages(images, transform), batch_size=args.batch_size, num_workers=args.workers
        )
        with torch.inference_mode(), autocast(args.device, args.precision):
            for batch in loader:
                model(batch.to(args.device, non_blocking=True)).float().cpu()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        save_images(path / "images.npz", images, np.zeros(len(images), dtype=np.int64))

        def lightning() -> None:
            data = ImageArrayDataModule(path / "images.npz", batch_size=args.batch_size)
            embed_images(
                model, preprocessing, data, path / "x.npy", devices=1, precision=args.precision
            )

        bare_loop()  # warm-up: kernels, allocator, cuDNN autotuning
        results = {"bare loop": timed(bare_loop, args.device)}
        results["lightning"] = timed(lightning, args.device)
        model.to(args.device)  # Lightning's teardown hands the model back on the CPU
        if not args.skip_pil:
            results["PIL loader"] = timed(pil_loader, args.device)

    sizes = f"{args.images} images {args.size}px -> {preprocessing.crop}px"
    print(f"machine: {describe(args.device)}")
    print(f"{args.source} {args.model}, {sizes}, {args.precision}")
    for label, seconds in results.items():
        ratio = results["bare loop"] / seconds
        print(f"{label:>10}: {args.images / seconds:9.1f} img/s  ({ratio:.2f} x the bare loop)")


if __name__ == "__main__":
    main()
