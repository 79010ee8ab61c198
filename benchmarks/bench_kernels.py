"""Time the compiled verify kernels against the PyTorch reference: `specbench kernels bench`.

    python benchmarks/bench_kernels.py --quick
    python benchmarks/bench_kernels.py -B 1 -k 4 -V 49152 --strategy sps --strategy cactus

All flags are those of `specbench kernels bench --help`.
"""

from __future__ import annotations

import sys

from specbench_cli.commands.kernels import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]], prog_name="bench_kernels.py")
