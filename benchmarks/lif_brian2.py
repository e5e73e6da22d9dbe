"""The same LIF network simulated by planted and by Brian2, side by side in one run.

1,000 excitatory current-based LIF neurons, about 15,000 synapses with Tsodyks-Markram
short-term depression, Poisson background input, dt 0.1 ms, 2 ms synaptic delay: planted's
``toys.connectome`` dynamics (the compiled JAX path and the host-loop scipy path) against Brian2's
default runtime target (cython) and, when asked, its C++ standalone mode. Every simulator gets
the same weights (written to an npz), constants and duration; compilation is timed apart (a
short warm-up run first; Brian2's C++ binary is timed by Brian2 itself, its compilation apart).
Each round runs every simulator once, ``--repeats`` rounds. Printed: the best and median seconds of
each, the ratios of the best times against Brian2's cython and C++ runs, and mean firing rates
(the models agree in law, not spike for spike: their random background differs).

Brian2 2.9 does not import under NumPy >= 2.4, so it can run in its own environment:

    python -m venv b2 && b2/bin/pip install brian2 "numpy<2.4" cython scipy
    python benchmarks/lif_brian2.py --duration 60 --brian2-python b2/bin/python [--standalone] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from planted.toys import ConnectomeConfig
from planted.toys._connectome._dynamics import _features, _simulate, _tuning
from planted.toys._connectome._wiring import _wiring
from _machine import device_line

N, SYNAPSES = 1000, 15_000

BRIAN2 = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    from brian2 import (NeuronGroup, Network, PoissonInput, Synapses, SpikeMonitor, defaultclock, ms, mV, Hz,
                        prefs, set_device, device)
    p = json.loads(sys.argv[1])
    data = np.load(p["weights"])
    if p["standalone"]:
        set_device("cpp_standalone", directory=p["directory"], build_on_run=False)
    else:
        prefs.codegen.target = "cython"
    defaultclock.dt = p["dt"] * 1000 * ms
    eqs = """
    dv/dt = (I - v) / tau_m : volt (unless refractory)
    dI/dt = -I / tau_s : volt
    """
    g = NeuronGroup(p["n"], eqs, threshold="v >= theta", reset="v = v_reset", refractory=p["refractory"] * 1000 * ms,
                    method="exact", namespace={"tau_m": p["tau_m"] * 1000 * ms, "tau_s": p["tau_syn"] * 1000 * ms,
                                               "theta": p["threshold"] * mV, "v_reset": p["reset"] * mV})
    g.v = np.random.default_rng(0).random(p["n"]) * p["threshold"] * mV
    # 100 inputs at rate / 100: a binomial count per step close to planted's Poisson count (one
    # input at the full rate would be a Bernoulli draw, 10% less variance at rate * dt = 0.1).
    bg = PoissonInput(g, "I", N=100, rate=p["background_rate"] / 100 * Hz, weight=p["background_weight"] * mV)
    s = Synapses(g, g, model="""w : volt
                                dx/dt = (1 - x) / tau_rec : 1 (event-driven)""",
                 on_pre="""I_post += w * U * x
                           x -= U * x""", namespace={"tau_rec": p["depression_tau"] * 1000 * ms, "U": p["depression_u"]})
    s.connect(i=data["pre"], j=data["post"])
    s.w = data["w"] * mV
    s.x = 1.0
    s.delay = p["delay"] * 1000 * ms
    spikes = SpikeMonitor(g)
    net = Network(g, bg, s, spikes)
    start = time.perf_counter()
    if p["standalone"]:
        net.run(p["duration"] * 1000 * ms)
        device.build(directory=p["directory"], compile=True, run=True)
        total = time.perf_counter() - start
        # the compiled binary's run (its start, the simulation, writing the results), timed by Brian2
        run = device.timers["run_binary"]
        print(json.dumps({"seconds": run, "compile": total - run, "network": device._last_run_time,
                          "spikes": int(spikes.num_spikes)}))
    else:
        net.run(0.1 * ms)  # compile the code objects
        compiled = time.perf_counter() - start
        start = time.perf_counter()
        net.run(p["duration"] * 1000 * ms)
        print(json.dumps({"seconds": time.perf_counter() - start, "compile": compiled, "spikes": int(spikes.num_spikes)}))
''')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--brian2-python", default=sys.executable)
    parser.add_argument("--standalone", action="store_true", help="also time Brian2's cpp_standalone mode")
    parser.add_argument("--weight", type=float, default=26.5, help="synaptic weight (mV of current jump)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every simulator, one after the other")
    args = parser.parse_args()
    print(device_line())
    cfg = ConnectomeConfig(n_neurons=N, n_modules=1, density=SYNAPSES / (N * (N - 1)), exc_fraction=1.0, weight=args.weight,
                           weight_sigma=0.0, depression=True, background_weight=2.8, dim=0, duration=args.duration,
                           observation="spikes", seed=0)
    weights, *_ = _wiring(cfg)
    tuning = _tuning(cfg)

    def features(t):
        return _features(cfg, np.asarray(t), np.random.default_rng(0))

    compiled = {}
    for kernel in ("jax", "scipy"):
        start = time.perf_counter()
        _simulate(dataclasses.replace(cfg, kernel=kernel, duration=0.01), weights, tuning, features)
        compiled[f"planted ({kernel})"] = time.perf_counter() - start
    runs: dict[str, list[float]] = {}
    spikes: dict[str, int] = {}
    network: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        coo = weights.tocoo()
        np.savez(Path(tmp) / "w.npz", pre=coo.row, post=coo.col, w=coo.data.astype(np.float64))
        params = {"weights": str(Path(tmp) / "w.npz"), "n": N, "dt": cfg.dt, "duration": cfg.duration,
                  "tau_m": cfg.tau_m, "tau_syn": cfg.tau_syn, "threshold": cfg.threshold, "reset": cfg.reset,
                  "refractory": cfg.refractory, "background_rate": cfg.background_rate,
                  "background_weight": cfg.background_weight, "depression_tau": cfg.depression_tau,
                  "depression_u": cfg.depression_u, "delay": cfg.delay}
        for _ in range(args.repeats):  # every simulator once per round, so drifts of the machine hit all alike
            for kernel in ("jax", "scipy"):
                start = time.perf_counter()
                times, _ = _simulate(dataclasses.replace(cfg, kernel=kernel), weights, tuning, features)
                runs.setdefault(f"planted ({kernel})", []).append(time.perf_counter() - start)
                spikes[f"planted ({kernel})"] = times.size
            for standalone in (False, True) if args.standalone else (False,):
                name = "Brian2 (cpp_standalone)" if standalone else "Brian2 (cython)"
                params.update(standalone=standalone, directory=str(Path(tmp) / "standalone"))
                out = subprocess.run([args.brian2_python, "-c", BRIAN2, json.dumps(params)], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{name} failed:\n{out.stderr[-2000:]}")
                    continue
                result = json.loads(out.stdout.strip().splitlines()[-1])
                runs.setdefault(name, []).append(result["seconds"])
                compiled[name], spikes[name] = result.get("compile"), result["spikes"]
                if "network" in result:
                    network.append(result["network"])
    print(f"LIF network: {N} neurons, {weights.nnz} depressing synapses, dt {cfg.dt * 1e3:.1f} ms, {cfg.duration:g} s; "
          f"best and median of {args.repeats} rounds")
    best = {name: min(t) for name, t in runs.items()}
    references = {"vs Brian2 cython": best.get("Brian2 (cython)"), "vs C++ run": best.get("Brian2 (cpp_standalone)")}
    print(f"{'simulator':26s} {'best s':>8s} {'median s':>9s} {'compile':>8s} {'rate (Hz)':>9s} "
          + " ".join(f"{k:>17s}" for k in references))
    for name, times in runs.items():
        ratios = " ".join(f"{f'{ref / best[name]:.2f}x' if ref else '-':>17s}" for ref in references.values())
        comp = f"{compiled[name]:.1f}" if compiled.get(name) is not None else "-"
        print(f"{name:26s} {best[name]:8.2f} {statistics.median(times):9.2f} {comp:>8s} "
              f"{spikes[name] / N / cfg.duration:9.2f} {ratios}")
    if network:
        print(f"(Brian2 cpp_standalone: {min(network):.2f} s of its best run in the network's time steps, the rest "
              "starting the binary and writing its results)")


if __name__ == "__main__":
    main()
