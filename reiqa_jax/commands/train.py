"""``reiqa train``: Re-IQA / MoCo-v2 training over every device of every host."""
from __future__ import annotations

import os
import sys

from reiqa_jax.errors import ReiqaError, error, one_line

HELP = "train a quality-aware (Re-IQA) or content-aware (MoCo-v2) encoder"
DESCRIPTION = """\
Trains with the recipe of a config file (configs/reiqa_quality_r50.py: the
official quality-aware encoder; configs/moco_v2_content_r50.py: the content
encoder; configs/smoke.py: a one-minute CPU run on bundled photos). Any config
value can be changed with --config.KEY=VALUE, e.g. --config.data=train.csv
--config.batch_size=256. A run continues from the newest checkpoint in its
workdir; SIGTERM (or Ctrl-C) saves a checkpoint and stops. At the end the
model is written to WORKDIR/model, ready for 'reiqa extract'.

Several hosts: start the same command on every host. On SLURM, Cloud TPU or
Kubernetes the hosts find each other (--distributed auto); elsewhere give
--coordinator_address HOST:PORT --num_processes N --process_id I.
"""
DISTRIBUTED_ENV = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "JAX_COORDINATOR_ADDRESS",
                   "TPU_WORKER_HOSTNAMES", "MEGASCALE_COORDINATOR_ADDRESS")


def add_arguments(p) -> None:
    from reiqa_jax.config_file import available_configs

    # --config.KEY=VALUE overrides are taken out of the command line before
    # argparse sees it (reiqa_jax.cli) and arrive as args.config_overrides.
    p.usage = "reiqa train --config CONFIG --workdir DIR [--config.KEY=VALUE ...] [options]"
    p.add_argument("--config", required=True,
                   help="config file, or a name from configs/ "
                        f"({', '.join(available_configs()) or 'e.g. smoke'})")
    p.add_argument("--workdir", required=True,
                   help="folder for checkpoints, metrics.jsonl, TensorBoard events and the "
                        "trained model; an existing run there is continued")
    p.add_argument("--coordinator_address", metavar="HOST:PORT",
                   help="address of process 0, for a multi-host run outside a cluster manager")
    p.add_argument("--num_processes", type=int, help="number of processes (hosts)")
    p.add_argument("--process_id", type=int, help="this process's index, 0..N-1")
    p.add_argument("--distributed", choices=("auto", "on", "off"), default="auto",
                   help="auto: join a multi-host run when a cluster manager (SLURM, MPI, "
                        "Cloud TPU) says there are several processes; on: always (JAX "
                        "auto-detection); off: single process (default: auto)")
    p.add_argument("--heartbeat_timeout", type=int, default=100, metavar="SECONDS",
                   help="a host silent this long is declared dead and the others stop with "
                        "an error (default: 100)")
    p.add_argument("--print_config", action="store_true",
                   help="print the resolved config and exit")


def _wants_distributed(args) -> bool:
    if args.coordinator_address or args.num_processes:
        return True
    if args.distributed != "auto":
        return args.distributed == "on"
    for name in DISTRIBUTED_ENV:
        value = os.environ.get(name, "")
        if name in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
            if value.isdigit() and int(value) > 1:
                return True
        elif "," in value or (value and name != "TPU_WORKER_HOSTNAMES"):
            return True
    return False


def _join_cluster(args, stop) -> None:
    """``jax.distributed.initialize``, which waits for every process (minutes,
    when one is missing), in a worker thread: signal handlers run only while
    the main thread runs Python, so waiting here lets a Ctrl-C end the
    process at once (nothing is written yet)."""
    import concurrent.futures

    import jax

    explicit = {k: v for k, v in (("coordinator_address", args.coordinator_address),
                                  ("num_processes", args.num_processes),
                                  ("process_id", args.process_id)) if v is not None}
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="join")
    joined = pool.submit(jax.distributed.initialize, **explicit,
                         heartbeat_timeout_seconds=args.heartbeat_timeout)
    while not concurrent.futures.wait([joined], timeout=0.1).done:
        if stop.received:
            print(f"reiqa train: {stop.name} while joining the multi-host run: stopped",
                  file=sys.stderr, flush=True)
            os._exit(stop.exit_status)  # the join cannot be cancelled or waited for
    pool.shutdown()
    joined.result()


def run(args) -> int:
    from reiqa_jax.interrupts import StopSignals

    # Signals are recorded from here on, never raised: a KeyboardInterrupt
    # inside JAX's start-up or compilation (or its garbage-collection hook)
    # left the process hung, running on or crashing.
    with StopSignals("reiqa train", "stopping before the next step, with a checkpoint if "
                     "steps have run", verbose=sys.stderr.isatty()) as stop:
        return _run(args, stop)


def _run(args, stop) -> int:
    from reiqa_jax.config_file import apply_overrides, load_config
    from reiqa_jax.config_schema import check

    try:
        config = check(apply_overrides(load_config(args.config), args.config_overrides))
    except ReiqaError as exc:
        return error("reiqa train", str(exc), exc.status)
    if args.print_config:
        print(config)
        return 0

    from reiqa_jax.compile_cache import enable_compile_cache

    enable_compile_cache()
    if _wants_distributed(args):
        try:  # JAX's preemption service takes SIGTERM over from here (see train.StopRequest)
            _join_cluster(args, stop)
        except Exception as exc:  # noqa: BLE001 - JAX raises several types here
            return error("reiqa train", f"cannot join the multi-host run: "
                                  f"{one_line(exc)[:300]}")

    from reiqa_jax.train import train_and_evaluate

    try:
        return train_and_evaluate(config, args.workdir, stop)
    except ReiqaError as exc:
        return error("reiqa train", str(exc), exc.status)
