"""Start-up cost (issue 14, item 5): a warm feature-extraction fit against ``import torch``.

Times, in fresh processes (best of ``--repeat``): ``python -c "import torch"``, ``graft --help``,
and ``graft fit DIGITS --strategy feature-extraction`` on a few hundred digit images whose
features are already stored (one cold fit fills the store first). Target: warm fit at most 1.5x
``import torch``. A fourth row is the floor of anything that trains with PyTorch 2.x: ``import
torch`` plus one optimizer, whose construction imports ``torch._dynamo`` (about a second here).

    python bench/startup.py [--per-class 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The floor of any PyTorch training run: torch.optim's optimizers import torch._dynamo.
OPTIMIZER = "import torch; torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())"


def best(cmd: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """Best wall seconds and best CPU seconds (user + system) of ``repeat`` runs.

    CPU seconds hardly move with other work on a shared machine; wall seconds do.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(walls), min(cpus)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--per-class", type=int, default=30, help="digit images per class")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    from graft.data.digits import write_digits

    py = sys.executable
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GRAFT_CACHE_DIR": str(Path(tmp) / "cache"), "TQDM_DISABLE": "1"}
        data = write_digits(Path(tmp) / "digits", per_class=args.per_class, seed=0)
        fit = [py, "-m", "graft.cli", "fit", str(data), "--strategy", "feature-extraction",
               "--backbone", "efficientnet_lite0", "--image-size", str(args.image_size),
               "--epochs", "5", "--out", str(Path(tmp) / "model")]  # fmt: skip
        cold = best(fit, 1, env)
        t_torch = best([py, "-c", "import torch"], args.repeat, env)
        t_optim = best([py, "-c", OPTIMIZER], args.repeat, env)
        t_help = best([py, "-m", "graft.cli", "--help"], args.repeat, env)
        t_warm = best(fit, args.repeat, env)
    n = args.per_class * 10
    rows = [
        ("python -c 'import torch'", t_torch),
        ("import torch + one optimizer (torch._dynamo)", t_optim),
        ("graft --help", t_help),
        (f"graft fit, {n} images, features not stored", cold),
        (f"graft fit, {n} images, features stored", t_warm),
    ]
    print(f"load average before: {load[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    print("| command | wall s | / import torch | CPU s | / import torch |")
    print("|---|---:|---:|---:|---:|")
    for name, (wall, cpu) in rows:
        print(
            f"| {name} | {wall:.2f} | {wall / t_torch[0]:.2f} | {cpu:.2f} | {cpu / t_torch[1]:.2f} |"
        )
    print(
        f"\nwarm fit / import torch: {t_warm[0] / t_torch[0]:.2f} wall, "
        f"{t_warm[1] / t_torch[1]:.2f} CPU  (target <= 1.5)"
    )


if __name__ == "__main__":
    main()
