"""Manhattan nearest-proxy distances: the tiled kernel against ``torch.cdist(p=1)``, one process.

Both compute the (test rows × proxies) L1 distances of a search in blocks, as ``nearest_proxies``
does; the float32 GEMM of the same shape is the yardstick. The floor is ``bench_paper.py``'s:
an L1 term costs two instructions (a minimum and an addition), where the GEMM's term is one
multiply-add (2 flops), so it is priced at 4 flops: twice the GEMM's time. Default sizes: a
CIFAR-sized ``all`` proxy set (50,000 × 512) and 2,000 test rows, on every CPU thread.

    python benchmarks/bench_manhattan.py
    python benchmarks/bench_manhattan.py --threads 1 --proxies 10000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from host import describe

from imprint.method.manhattan import manhattan_to


def _seconds(run: Callable[[], object], repeats: int = 3) -> float:
    run()  # compiles the kernel (or loads it from numba's cache) and warms the caches
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", type=int, default=50_000)
    parser.add_argument("--test-rows", type=int, default=2_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--block", type=int, default=335, help="test rows per block")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(args.proxies, args.dim, generator=generator)
    x = torch.randn(args.test_rows, args.dim, generator=generator)
    blocks = list(torch.split(x, args.block))
    tiled = manhattan_to(w)
    runs = {
        "tiled kernel": lambda: [tiled(b) for b in blocks],
        "torch.cdist(p=1)": lambda: [torch.cdist(b, w, p=1.0) for b in blocks],
        "float32 GEMM (same shape)": lambda: [b @ w.T for b in blocks],
    }
    seconds = {name: _seconds(run) for name, run in runs.items()}
    gemm_flops = 2 * args.test_rows * args.proxies * args.dim / seconds["float32 GEMM (same shape)"]
    floor = 4 * args.test_rows * args.proxies * args.dim / gemm_flops
    print(f"machine: {describe(threads=args.threads)}")
    print(f"{args.test_rows} test rows x {args.proxies} proxies x {args.dim} dimensions")
    for name, s in seconds.items():
        print(f"  {name:28s} {s:8.3f} s")
    print(f"  cdist / tiled: {seconds['torch.cdist(p=1)'] / seconds['tiled kernel']:.1f}x")
    tiled = seconds["tiled kernel"]
    print(f"  tiled / floor (two instructions a term at the GEMM's rate): {tiled / floor:.2f}x")


if __name__ == "__main__":
    main()
