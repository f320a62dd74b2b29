"""What a benchmark ran on, for the first line of its report and the rates it writes: the same
code measured 2.7x apart on two 2-core VMs of the same kind, one with AVX-512 and one without."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe(device: str = "cpu", threads: int | None = None) -> str:
    """``<CPU> (<vector instructions PyTorch uses>), <n> CPU threads, torch <version>``, and the
    GPU's name first when ``device`` is CUDA."""
    threads = torch.get_num_threads() if threads is None else threads
    cpu = f"{cpu_name()} ({torch.backends.cpu.get_cpu_capability()}), {threads} CPU threads"
    gpu = f"{torch.cuda.get_device_name()}, " if device.startswith("cuda") else ""
    return f"{gpu}{cpu}, torch {torch.__version__}"
