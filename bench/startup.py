"""Start-up cost (issue 14, item 5): a warm feature-extraction fit against ``import torch``.

Times, in fresh processes (best of ``--repeat``): ``python -c "import torch"``, ``graft --help``,
and ``graft fit DIGITS --strategy feature-extraction`` on a few hundred digit images whose
features are already stored (one cold fit fills the store first). Target: warm fit at most 1.5x
``import torch``.

    python bench/startup.py [--per-class 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best(cmd: list[str], repeat: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-class", type=int, default=30, help="digit images per class")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from graft.data.digits import write_digits

    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GRAFT_CACHE_DIR": str(Path(tmp) / "cache"), "TQDM_DISABLE": "1"}
        data = write_digits(Path(tmp) / "digits", per_class=args.per_class, seed=0)
        fit = [py, "-m", "graft.cli", "fit", str(data), "--strategy", "feature-extraction",
               "--backbone", "efficientnet_lite0", "--image-size", str(args.image_size),
               "--epochs", "5", "--out", str(Path(tmp) / "model")]  # fmt: skip
        cold = best(fit, 1, env)
        t_torch = best([py, "-c", "import torch"], args.repeat, env)
        t_help = best([py, "-m", "graft.cli", "--help"], args.repeat, env)
        t_warm = best(fit, args.repeat, env)
    n = args.per_class * 10
    print("| command | seconds | / import torch |")
    print("|---|---:|---:|")
    print(f"| python -c 'import torch' | {t_torch:.2f} | 1.00 |")
    print(f"| graft --help | {t_help:.2f} | {t_help / t_torch:.2f} |")
    print(f"| graft fit, {n} images, features not stored | {cold:.2f} | {cold / t_torch:.2f} |")
    print(f"| graft fit, {n} images, features stored | {t_warm:.2f} | {t_warm / t_torch:.2f} |")
    print(f"\nwarm fit / import torch: {t_warm / t_torch:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
