"""The trained kind of ``rasp_transformer``: per program and seed, the time to train and build the
toy, the final loss, the interchange accuracy, whether it verifies, and whether its measured
circuit equals the compiled kind's.

    python benchmarks/rasp_trained.py [--programs successor shift_by reverse hist frac_prevs induction]
                                      [--seeds 3] [--steps 3000]

A program whose trained model does not verify is refused by ``build``; the table says so with the
interchange accuracy it reached.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

from planted import toys
from _machine import device_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", nargs="+", default=[*toys.TRAINED_PROGRAMS, "hist", "frac_prevs", "induction"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    print(device_line())
    print("| program | seed | train + build | loss | interchange accuracy | verifies | truth = compiled kind's |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for program in args.programs:
        compiled = {}
        for seed in range(args.seeds):
            t = time.perf_counter()
            try:
                toy = toys.rasp_transformer(program, 32, seed=seed, trained=True, train_steps=args.steps)
            except ValueError as error:
                reached = re.search(r"matched ([0-9.]+) of fresh", str(error))
                print(f"| {program} | {seed} | {time.perf_counter() - t:.0f} s | - | {reached.group(1) if reached else '?'} | "
                      "no (refused) | - |", flush=True)
                continue
            elapsed = time.perf_counter() - t
            if seed not in compiled:
                compiled[seed] = toys.rasp_transformer(program, 32, seed=seed)
            same = (np.array_equal(toy.truth.nodes, compiled[seed].truth.nodes)
                    and np.array_equal(toy.truth.edges[0], compiled[seed].truth.edges[0]))
            print(f"| {program} | {seed} | {elapsed:.0f} s | {toy.training['loss']:.1e} | "
                  f"{toy.training['interchange_accuracy']:.3f} | yes | {'yes' if same else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
