"""Train the embedded default's CNN on the seen digit classes."""

from imprint.fms.data import load_images
from imprint.fms.demo_fm import train_demo_fm
from imprint.io import log_to

with log_to(snakemake.log[0]):
    settings = snakemake.params.settings
    images, labels = load_images(snakemake.input[0])
    accuracy = train_demo_fm(
        images,
        labels,
        classes=settings.get("classes", [0, 1, 2, 3, 4]),
        path=snakemake.output[0],
        epochs=settings.get("epochs", 30),
        seed=settings.get("seed", 0),
        width=settings.get("width", 32),
    )
    print(f"training accuracy on the seen classes: {accuracy:.4f}")
