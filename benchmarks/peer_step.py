"""Our training step against the PyTorch peer's, timed alternately on the same batch.

    python benchmarks/peer_step.py --torch-python /tmp/torch-venv/bin/python
        [--rounds 3] [--widths 64] [--batch-size 64] [--warmup 3] [--steps 10]
        [--threads N] [--lstm padded|packed] [--seed 0] [--timeout 600] [--note TEXT]
        [--output benchmarks/results/peer_step.json]

Issue #12 asks for M³SA-TF's training throughput as a multiple of a plain PyTorch
implementation of the same network on the same machine, measured in the same run rather
than remembered. Each round runs, each in a fresh process and one after the other:

- ours: `benchmarks/train_step.py`'s `benchmark_model` (M³SA at MOSI shapes, n and r as
  given, every d_m = `--widths`, compiled as training compiles it, `train_on_batch`);
- the peer: `benchmarks/peers/torch_m3sa.py` under `--torch-python`, the Python of a
  scratch virtual environment with torch (benchmarks/peers/README.md; torch is never a
  dependency of this package).

Both read the same batch (one .npz drawn like train_step.py's random batch: MOSI's
padded shapes, valid lengths uniform in [1, T]), take `--warmup` untimed steps (the first
one traces or allocates) and time `--steps` steps; samples/s = batch / median step.
Who goes first alternates between rounds, so a drift in the machine's load does not
favour one side. Both get the same thread counts (`--threads`, default: the usable
CPUs): TensorFlow's intra- and inter-op pools, torch's `set_num_threads` and
`set_num_interop_threads`. On a CPU shared with other jobs, more threads than idle
cores hurt torch's OpenMP pool badly (its threads spin at every barrier and stall for
seconds when a core is taken away); there `--threads 1` gives the comparable figures.

Output (`--output`): per round each side's samples/s, median/min step and load
average around it; the medians over rounds; the ratio ours / peer (of the medians, and
per round); the load average before and after; the versions, thread settings and the
command. A load average above the CPU count means other jobs shared the CPU: the
absolute figures are then pessimistic, and the alternating ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

PEER_SCRIPT = os.path.join(HERE, "peers", "torch_m3sa.py")
DEFAULT_OUTPUT = os.path.join(HERE, "results", "peer_step.json")
DATASET = "mosi"
# Environment variables that change either side's threading (recorded, never set).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
NO_TORCH_HELP = (
    "make a scratch virtual environment with torch and pass its Python, e.g.\n"
    "    python -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch numpy\n"
    "    python benchmarks/peer_step.py --torch-python /tmp/torch-venv/bin/python\n"
    "(see benchmarks/peers/README.md; torch is never a dependency of this package)"
)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def write_batch(path: str, batch_size: int, seed: int) -> dict:
    """The batch both sides train on, as `feature/NAME` and `label/NAME` arrays in an
    .npz; returns the mean valid length per modality."""
    import numpy as np

    from tfrecords.specs import spec_for
    from train_step import synthetic_batch

    features, labels = synthetic_batch(spec_for(DATASET), batch_size, seed)
    arrays = {f"feature/{k}": v for k, v in features.items()}
    arrays.update({f"label/{k}": v for k, v in labels.items()})
    np.savez(path, **arrays)
    return {k[: -len("_length")]: float(np.mean(v))
            for k, v in features.items() if k.endswith("_length")}


def read_batch(path: str):
    import numpy as np

    with np.load(path) as data:
        features = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("feature/")}
        labels = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("label/")}
    return features, labels


def ours_worker(args) -> int:
    """In a fresh process: our train step on the .npz batch; writes its JSON record."""
    import tensorflow as tf

    # Before TensorFlow starts its thread pools.
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from train_step import benchmark_model, machine_info

    features, labels = read_batch(args.worker_batch)
    batch_size = int(labels["fused"].shape[0])
    record = benchmark_model("m3sa", DATASET, batch_size, args.steps, args.warmup,
                             args.n_scales, args.channel_ratio, args.seed,
                             widths=args.widths, batch=(features, labels))
    record.pop("config", None)
    record["threads"] = {
        "tf.intra_op_parallelism_threads":
            tf.config.threading.get_intra_op_parallelism_threads(),
        "tf.inter_op_parallelism_threads":
            tf.config.threading.get_inter_op_parallelism_threads(),
    }
    record["machine"] = machine_info()
    with open(args.worker_output, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return 0


def run_side(side: str, args, batch_path: str, workdir: str, round_index: int) -> dict:
    """Runs one side in a fresh process; its record (raises RuntimeError on failure)."""
    output = os.path.join(workdir, f"{side}_{round_index}.json")
    common = ["--warmup", str(args.warmup), "--steps", str(args.steps),
              "--threads", str(args.threads), "--seed", str(args.seed),
              "--n-scales", str(args.n_scales), "--channel-ratio", str(args.channel_ratio)]
    if side == "ours":
        command = [sys.executable, os.path.abspath(__file__), "--worker-batch", batch_path,
                   "--worker-output", output, "--widths", str(args.widths)] + common
    else:
        command = [args.torch_python, PEER_SCRIPT, "--batch", batch_path, "--output", output,
                   "--widths", str(args.widths), "--lstm", args.lstm] + common
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{side} (round {round_index + 1}) ran past --timeout "
                           f"{args.timeout} s: {' '.join(command)}")
    if done.returncode != 0 or not os.path.exists(output):
        tail = (done.stderr or "")[-3000:]
        raise RuntimeError(f"{side} (round {round_index + 1}) failed with exit status "
                           f"{done.returncode}:\n{tail}")
    with open(output, "r", encoding="utf-8") as handle:
        record = json.load(handle)
    record["process_seconds"] = time.perf_counter() - start
    return record


def summarise(record: dict) -> dict:
    keys = ("samples_per_s", "step_ms_median", "step_ms_min", "step_ms_max", "timed_steps",
            "warmup_steps", "parameters", "load_average_1_5_15min", "process_seconds")
    summary = {k: record.get(k) for k in keys}
    summary["first_step_seconds"] = record.get(
        "first_step_seconds_with_tracing", record.get("first_step_seconds"))
    return summary


def check_torch_python(path: str):
    """(torch version, None) or (None, why not)."""
    if not path:
        return None, "no --torch-python given"
    try:
        done = subprocess.run([path, "-c", "import torch, numpy; print(torch.__version__)"],
                              capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"cannot run {path}: {err}"
    if done.returncode != 0:
        return None, f"{path} cannot import torch and numpy: {done.stderr.strip()[-500:]}"
    return done.stdout.strip(), None


# The benchmarks share one parser of counts (this folder is on sys.path when run).
from train_step import positive_int  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Without --torch-python: " + NO_TORCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-python", default=None, metavar="PATH",
                        help="the Python of a virtual environment with torch and numpy")
    parser.add_argument("--rounds", type=positive_int, default=3,
                        help="rounds of (ours, peer), who goes first alternating")
    parser.add_argument("--widths", type=positive_int, default=64, metavar="D",
                        help="every modality's d_m on both sides (default 64)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--warmup", type=positive_int, default=3,
                        help="untimed steps first (ours: the first traces the graph)")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps")
    parser.add_argument("--n-scales", type=positive_int, default=5)
    parser.add_argument("--channel-ratio", type=positive_int, default=4)
    parser.add_argument("--threads", type=positive_int, default=usable_cpus(),
                        help="intra- and inter-op threads of both (default: usable CPUs)")
    parser.add_argument("--lstm", choices=("padded", "packed"), default="padded",
                        help="the peer's LSTM over the padded sequence (the same work as "
                             "ours, default) or a packed one (skips the padding)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch")
    parser.add_argument("--timeout", type=positive_int, default=600,
                        help="seconds one side's process may take")
    parser.add_argument("--note", default=None, help="free text kept in the JSON")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    parser.add_argument("--worker-batch", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-output", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker_batch:
        return ours_worker(args)

    torch_version, problem = check_torch_python(args.torch_python)
    if problem:
        print(f"error: {problem}; the peer benchmark needs PyTorch outside this "
              f"package: {NO_TORCH_HELP}", file=sys.stderr)
        return 2
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        print(f"error: the output directory {out_dir} is not writable", file=sys.stderr)
        return 2

    from msa_core.io import write_json_atomic

    command = "python benchmarks/peer_step.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    load_before = os.getloadavg()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="peer_step_") as workdir:
        batch_path = os.path.join(workdir, "batch.npz")
        lengths_mean = write_batch(batch_path, args.batch_size, args.seed)
        for i in range(args.rounds):
            order = ("ours", "peer") if i % 2 == 0 else ("peer", "ours")
            records = {}
            for side in order:
                try:
                    records[side] = run_side(side, args, batch_path, workdir, i)
                except RuntimeError as err:
                    print(f"error: {err}", file=sys.stderr)
                    return 1
                print(f"round {i + 1}: {side} {records[side]['samples_per_s']:.1f} samples/s "
                      f"({records[side]['step_ms_median']:.0f} ms/step)", flush=True)
            rounds.append({
                "order": list(order),
                "ours": summarise(records["ours"]),
                "peer": summarise(records["peer"]),
                "ratio_ours_over_peer": (records["ours"]["samples_per_s"]
                                         / records["peer"]["samples_per_s"]),
            })
            if i == 0:
                ours_first, peer_first = records["ours"], records["peer"]

    ours_median = statistics.median(r["ours"]["samples_per_s"] for r in rounds)
    peer_median = statistics.median(r["peer"]["samples_per_s"] for r in rounds)
    result = {
        "benchmark": "peer_step",
        "command": command,
        "dataset_shapes": DATASET,
        "shapes": ours_first["shapes"],
        "batch_size": args.batch_size,
        "batch_lengths_mean": lengths_mean,
        "widths": args.widths,
        "hidden_sizes": ours_first["hidden_sizes"],
        "n_scales": args.n_scales,
        "channel_ratio": args.channel_ratio,
        "task": ours_first["task"],
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "peer_lstm": args.lstm,
        "rounds": rounds,
        "ours_samples_per_s_median": ours_median,
        "peer_samples_per_s_median": peer_median,
        "ratio_ours_over_peer": ours_median / peer_median,
        "ratio_ours_over_peer_per_round": [r["ratio_ours_over_peer"] for r in rounds],
        "threads": {**ours_first["threads"], **peer_first["threads"]},
        "thread_environment": {k: os.environ.get(k) for k in THREAD_VARIABLES},
        "versions": {"tensorflow": ours_first["machine"]["tensorflow"],
                     "keras": ours_first["machine"]["keras"],
                     "torch": torch_version,
                     "python_ours": platform.python_version(),
                     "python_peer": peer_first["versions"]["python"]},
        "parameters": {"ours": ours_first["parameters"]["trainable"],
                       "peer": peer_first["parameters"]},
        "machine": ours_first["machine"],
        "load_average_1_5_15min": {"before": list(load_before),
                                   "after": list(os.getloadavg())},
        "note": "each side in a fresh process, alternating who goes first; samples/s = "
                "batch / median step (forward + backward + AdamW update of one cached "
                "batch). A load average above the CPU count means other jobs shared the "
                "CPU: absolute figures are then pessimistic; the alternating ratio is "
                "the meaningful figure.",
    }
    if args.note:
        result["run_note"] = args.note
    write_json_atomic(args.output, result)
    print(f"ours {ours_median:.1f} samples/s, peer {peer_median:.1f} samples/s, "
          f"ratio {ours_median / peer_median:.2f}; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
