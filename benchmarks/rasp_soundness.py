"""The soundness census of the RASP compiler: random well-typed programs compiled and compared with
the interpreter on every input up to their length, outputs and internals (``rasp.differential``).

    python benchmarks/rasp_soundness.py [--programs 1000] [--vocab-size 4] [--max-seq-len 5] [--ops 2 4]

Printed: programs tried, compiled exactly, refused (with every refusal's reason tallied) and
mismatched (the goal is zero; the first few are shown with their seeds, to reproduce with
``toys.rasp.random_program``).
"""

from __future__ import annotations

import argparse
import collections
import re
import time

from planted.toys import rasp
from _machine import device_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=1000)
    parser.add_argument("--vocab-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=5)
    parser.add_argument("--ops", type=int, nargs=2, default=(2, 4), metavar=("MIN", "MAX"))
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    print(device_line())
    low, high = args.ops
    counts = collections.Counter()
    reasons = collections.Counter()
    wrong = []
    inputs = 0
    start = time.perf_counter()
    for i in range(args.programs):
        seed = args.first_seed + i
        drawn = rasp.random_program(seed, vocab_size=args.vocab_size, max_seq_len=args.max_seq_len,
                                    n_ops=low + i % (high - low + 1))
        try:
            compiled = rasp.compile_program(drawn.program, drawn.vocab, drawn.max_seq_len, causal=drawn.causal)
        except ValueError as error:
            counts["refused"] += 1
            # The reason without the operation's name: "a numerical Aggregate needs an argument that is never null".
            reasons[re.sub(r"\b\w+_\d+\b", "…", str(error).split(": ", 1)[1]).split(";")[0]] += 1
            continue
        result = rasp.differential(compiled, backend="numpy")
        inputs += result.n_inputs
        counts["exact" if result.ok else "mismatched"] += 1
        if not result.ok:
            wrong.append((seed, drawn.ops, result.mismatches[:1], result.problems[:1]))
    seconds = time.perf_counter() - start
    print(f"{args.programs} random programs ({low}-{high} operations, vocab {args.vocab_size}, inputs up to length "
          f"{args.max_seq_len}) in {seconds:.0f} s: {counts['exact']} compiled and equal to the interpreter on all "
          f"{inputs} inputs, {counts['refused']} refused, {counts['mismatched']} mismatched")
    for reason, n in reasons.most_common():
        print(f"  refused {n}x: {reason}")
    for case in wrong[:5]:
        print("  MISMATCH seed", *case)


if __name__ == "__main__":
    main()
