"""What keying random draws by class costs: k-means++ seeding, the random GENs and few-shot
sampling with one stream per class (``ClassStreams``, what imprint does) against one stream
shared by all classes (what it did before: a class's draws then depended on the other classes),
in one process.

    python benchmarks/bench_streams.py                 # 100 classes of 500 64-d samples
    python benchmarks/bench_streams.py --classes 1000 --per-class 50
"""

from __future__ import annotations

import argparse
import time

import torch
from host import describe
from torch import Tensor

from imprint.method import clustering, presample
from imprint.method.batch import ClassBatch
from imprint.method.generators import GEN, GenContext
from imprint.method.randomness import ClassStreams, stage_generator


class SharedStream(ClassStreams):
    """All classes from one generator, row after row of one tensor (the former draws)."""

    def __init__(self, generator: torch.Generator, n_classes: int) -> None:
        super().__init__([])
        self.generator, self.n_classes = generator, n_classes

    def __len__(self) -> int:
        return self.n_classes

    def subset(self, classes: slice) -> ClassStreams:
        return SharedStream(self.generator, len(range(self.n_classes)[classes]))

    def uniform(self, draws: int, device: torch.device) -> Tensor:
        shape = (self.n_classes, draws)
        return torch.rand(shape, generator=self.generator, dtype=torch.float64).to(device)

    def uniform_masked(self, mask: Tensor) -> Tensor:
        keys = torch.rand(mask.shape, generator=self.generator, dtype=torch.float64)
        return keys.to(mask.device).masked_fill(~mask, torch.inf)


def _seconds(function, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    n = args.classes * args.per_class
    labels = torch.arange(args.classes).repeat_interleave(args.per_class)
    batch = ClassBatch.from_labels(torch.randn(n, args.dim), labels, args.classes)
    keyed = ClassStreams.__dict__["keyed"]

    def shared(seed: int, stage: str, keys) -> ClassStreams:
        return SharedStream(stage_generator(seed, stage), len(keys))

    def seeding(k: int) -> Tensor:  # k-means' random part (Lloyd's steps draw nothing)
        return clustering.plus_plus_init(
            batch.x, batch.mask, k, ClassStreams.keyed(0, "gen", batch.keys)
        )

    cases = [
        ("k-means++ seeding k=20", lambda: seeding(20)),
        ("k-means++ seeding k=5", lambda: seeding(5)),
    ]
    cases += [
        (f"GEN {gen} k=20", lambda g=gen: GEN[g](batch, 20, GenContext(0)))
        for gen in ("fps", "random")
    ]
    cases.append(("fewshot n=10", lambda: presample.fewshot(batch, 10, 0)))
    print(f"machine: {describe()}")
    print(f"{args.classes} classes x {args.per_class} samples, {args.dim}-d; best of 3")
    print("| step | one stream per class (s) | one shared stream (s) | ratio |")
    print("|---|---|---|---|")
    for name, run in cases:
        per_class = _seconds(run)
        ClassStreams.keyed = staticmethod(shared)  # type: ignore[assignment]
        try:
            one = _seconds(run)
        finally:
            ClassStreams.keyed = keyed  # type: ignore[method-assign]
        print(f"| {name} | {per_class:.3f} | {one:.3f} | {per_class / one:.2f} |")


if __name__ == "__main__":
    main()
