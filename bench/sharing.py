"""Sharing the cores: the demo's query generation alone, then two copies at once, with the old thread settings and with
those the CLI sets (inpars.threads.configure), in the same run.

Each copy is a process that loads the embedded SmolLM2-135M-Instruct and writes one query for each of the first N
faq-construction documents through the hf backend (greedy, the demo's prompt and batch); only the generation is timed,
and the two copies of a pair start it together. Settings:

- old: what inpars did before: OMP_WAIT_POLICY unset (GNU OpenMP's idle threads spin before they sleep), torch threads
  from os.cpu_count();
- inpars: inpars.threads.configure(): OMP_WAIT_POLICY=PASSIVE, torch threads from the cores the process may use.

The ratio is a copy's time in the pair over its time alone: 2.0 is an even split of the cores, more is time lost to
sharing (the aim: 2.2 at most). "alone, inpars/old" is what the settings cost a process that has the cores to itself.

Beside each figure: the cores that other processes kept busy meanwhile (from /proc/stat, less the workers' own CPU
time). Figures taken beside other busy processes are not figures of a process alone.

    nice -n 10 python bench/sharing.py --docs 16 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = ("old", "inpars")
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


def cpu_description() -> str:
    """The CPU's model name and which of the instruction sets that CPU inference uses it has."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    has = [flag for flag in FLAGS if flag in flags]
    lacks = [flag for flag in FLAGS if flag not in flags]
    return f"{model}; flags: {' '.join(has) or 'none'} (not: {' '.join(lacks) or '-'})"


def busy_seconds() -> float | None:
    """CPU seconds that every process together has used since boot (/proc/stat; None where there is none)."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def worker(args: argparse.Namespace) -> None:
    """One copy: set the threads as ``args.worker`` says, load, say 'ready', wait for a line on stdin, generate, print
    the seconds as JSON."""
    if args.worker == "inpars":
        from inpars import threads

        threads.configure()
    import torch

    if args.worker == "old":
        torch.set_num_threads(os.cpu_count() or 1)
    from inpars.datasets import load_dataset
    from inpars.generate.base import GenerationRequest
    from inpars.generate.hf import HFGenerator
    from inpars.prompt import load_prompt

    data = load_dataset("faq-construction")
    docs = [data.docs[i] for i in sorted(data.docs)[: args.docs]]
    prompt = load_prompt("inpars")
    generator = HFGenerator("embedded:smollm2-135m", device="cpu")
    requests = [GenerationRequest(prompt.prefix, prompt.suffix(generator.truncate(d.full_text, 256))) for d in docs]
    requests.sort(key=lambda r: len(generator.suffix_ids(r.suffix)))  # what the generation stage does
    generator.generate(requests[:1], max_new_tokens=2)  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for start in range(0, len(requests), args.batch_size):
        generator.generate(requests[start : start + args.batch_size], max_new_tokens=args.max_new_tokens)
    seconds = time.perf_counter() - started
    wait = os.environ.get("OMP_WAIT_POLICY", "unset")
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(), "wait_policy": wait}), flush=True)


def measure(settings: str, copies: int, args: argparse.Namespace, logs: Path) -> tuple[list[dict], float | None]:
    """Each copy's figures, and the cores that other processes kept busy meanwhile."""
    busy, own, started = busy_seconds(), children_seconds(), time.perf_counter()
    results = run_copies(settings, copies, args, logs)
    if busy is None:
        return results, None
    others = (busy_seconds() - busy) - (children_seconds() - own)
    return results, max(0.0, others / (time.perf_counter() - started))


def run_copies(settings: str, copies: int, args: argparse.Namespace, logs: Path) -> list[dict]:
    """``copies`` workers with ``settings``, their timed parts started together; each one's figures."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GOMP_SPINCOUNT")}
    command = [
        sys.executable, __file__, "--worker", settings, "--docs", str(args.docs), "--batch-size", str(args.batch_size),
        "--max-new-tokens", str(args.max_new_tokens),
    ]
    procs, errors = [], []
    for index in range(copies):
        error = (logs / f"{settings}-{copies}-{index}.log").open("w", encoding="utf-8")
        errors.append(error)
        procs.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=error, text=True, env=env))
    try:
        for proc in procs:
            line = proc.stdout.readline().strip()
            if line != "ready":
                raise SystemExit(f"a {settings} worker failed before generating; see {errors[procs.index(proc)].name}")
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"a {settings} worker failed ({proc.returncode}); see {errors[procs.index(proc)].name}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for error in errors:
            error.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=16, help="faq-construction documents (the first N by id)")
    parser.add_argument("--batch-size", type=int, default=32, help="the demo's generate.batch_size")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="measure each setting this many times (alone, then the pair)")
    parser.add_argument("--output", help="also write the figures here (JSON)")
    parser.add_argument("--worker", choices=SETTINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{cpu_description()}\n{os.cpu_count()} cores, {affinity} in this process's affinity; torch {torch.__version__}; "
        f"{args.docs} documents, batch {args.batch_size}, {args.max_new_tokens} new tokens, greedy"
    )
    figures: dict = {"cpu": cpu_description(), "cores": os.cpu_count(), "affinity": affinity, "settings": {}}
    with tempfile.TemporaryDirectory(prefix="inpars-sharing-") as folder:
        for settings in SETTINGS:
            alone, pair, others = [], [], []
            for _ in range(args.repeats):
                for copies, into in ((1, alone), (2, pair)):
                    results, busy = measure(settings, copies, args, Path(folder))
                    into += results
                    others.append(busy)
            figures["settings"][settings] = {"alone": alone, "pair": pair, "others_busy_cores": others}

    print(f"{'settings':<10}{'threads':>8}{'wait':>9}{'alone s':>10}{'pair s, mean (range)':>24}{'ratio':>8}  others' busy cores")
    for settings, runs in figures["settings"].items():
        alone = statistics.median(r["seconds"] for r in runs["alone"])
        each = [r["seconds"] for r in runs["pair"]]
        runs["ratio"] = statistics.mean(each) / alone
        first = runs["alone"][0]
        print(
            f"{settings:<10}{first['threads']:>8}{first['wait_policy']:>9}{alone:>10.1f}"
            f"{f'{statistics.mean(each):.1f} ({min(each):.1f}-{max(each):.1f})':>24}{runs['ratio']:>8.2f}  "
            + " ".join("?" if x is None else f"{x:.2f}" for x in runs["others_busy_cores"])
        )
    old, new = (statistics.median(r["seconds"] for r in figures["settings"][s]["alone"]) for s in SETTINGS)
    figures["alone_inpars_over_old"] = new / old
    print(f"alone, inpars/old: {new / old:.2f} (above 1: the settings slow a process that has the cores to itself)")
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
