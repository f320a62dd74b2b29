"""Lightning embeddings against a direct forward pass; shard merging; preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imprint.fms.backbones import DEMO_PREPROCESSING, DemoCNN, Preprocessing
from imprint.fms.data import save_images
from imprint.fms.embed import (
    ImageArrayDataModule,
    ImageFolderDataModule,
    embed_images,
    merge_shards,
)
from imprint.fms.store import embeddings_precision, open_embeddings


def test_trainer_predict_equals_a_direct_forward_pass_in_order(tmp_path):
    torch.manual_seed(0)
    images = np.random.default_rng(0).integers(0, 256, size=(37, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(37) % 5
    save_images(tmp_path / "images.npz", images, labels)
    backbone = DemoCNN().features.eval()
    embed_images(
        backbone,
        DEMO_PREPROCESSING,
        ImageArrayDataModule(tmp_path / "images.npz", batch_size=8),
        tmp_path / "x.npy",
        accelerator="cpu",
        devices=1,
    )
    with torch.no_grad():
        expected = backbone(DEMO_PREPROCESSING(torch.from_numpy(images))).numpy()
    got, got_labels = open_embeddings(tmp_path / "x.npy")
    assert got.dtype == np.float32 and got.shape == (37, 64)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got_labels, labels)
    assert not (tmp_path / "x.npy.shards").exists()
    assert embeddings_precision(tmp_path / "x.npy") == "32-true"


def test_bf16_autocast_is_opt_in_and_recorded(tmp_path):
    torch.manual_seed(0)
    images = np.random.default_rng(1).integers(0, 256, size=(16, 8, 8, 1), dtype=np.uint8)
    save_images(tmp_path / "images.npz", images, np.arange(16) % 4)
    backbone = DemoCNN().features.eval()
    data = ImageArrayDataModule(tmp_path / "images.npz", batch_size=8)
    embed_images(
        backbone, DEMO_PREPROCESSING, data, tmp_path / "x.npy", "cpu", 1, precision="bf16-mixed"
    )
    with torch.no_grad():
        exact = backbone(DEMO_PREPROCESSING(torch.from_numpy(images))).numpy()
    got, _ = open_embeddings(tmp_path / "x.npy")
    assert got.dtype == np.float32
    assert not np.array_equal(got, exact)  # bf16 rounding shows
    np.testing.assert_allclose(got, exact, rtol=0.05, atol=0.05)
    assert embeddings_precision(tmp_path / "x.npy") == "bf16-mixed"


def test_merge_orders_shards_and_drops_sampler_padding(tmp_path):
    # Two ranks as a DistributedSampler deals them: interleaved, with index 0 repeated as padding.
    torch.save(
        {"index": torch.tensor([0, 2, 4]), "embeddings": torch.tensor([[0.0], [2.0], [4.0]])},
        tmp_path / "rank0.pt",
    )
    torch.save(
        {"index": torch.tensor([1, 3, 0]), "embeddings": torch.tensor([[1.0], [3.0], [0.0]])},
        tmp_path / "rank1.pt",
    )
    np.testing.assert_array_equal(merge_shards(tmp_path, 5)[:, 0], [0, 1, 2, 3, 4])
    with pytest.raises(RuntimeError, match="cover 5 of 6 samples"):
        merge_shards(tmp_path, 6)


def test_preprocessing_matches_resize_crop_normalise_done_by_hand():
    images = torch.randint(0, 256, (2, 40, 60, 1), dtype=torch.uint8)
    spec = Preprocessing(resize=32, crop=24, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))
    x = images.permute(0, 3, 1, 2).float().div(255).expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(32, 48), mode="bilinear", antialias=True, align_corners=False)
    x = x[..., 4:28, 12:36]
    expected = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2, 0.3, 0.4]
    ).view(1, 3, 1, 1)
    got = spec(images)
    assert got.shape == (2, 3, 24, 24)
    torch.testing.assert_close(got, expected)


def test_image_folder_batches_are_resized_cropped_uint8_with_folder_order_labels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    for wnid in ("n01", "n02", "n03"):
        (tmp_path / wnid).mkdir()
        for i in range(2):
            pixels = rng.integers(0, 256, size=(30 + 10 * i, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / wnid / f"{i}.png")
    data = ImageFolderDataModule(
        tmp_path, classes=[2, 0], resize=20, crop=16, batch_size=4, num_workers=0
    )
    data.setup()
    assert data.labels.tolist() == [2, 2, 0, 0]
    images, index = next(iter(data.predict_dataloader()))
    assert images.shape == (4, 16, 16, 3) and images.dtype == torch.uint8
    assert index.tolist() == [0, 1, 2, 3]
