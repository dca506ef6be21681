"""`ganlab <command> [overrides]`: the console script.

`train` hands the overrides to Hydra (composition, multirun, run directories). User mistakes — a ConfigError
from ganlab or a composition error from Hydra — become one paragraph on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import datetime
import errno
import fnmatch
import gc
import importlib
import logging
import os
import re
import signal
import sys
from typing import NoReturn

from hydra.errors import HydraException

from ganlab.atomic_write import SPACE_ERRNOS
from ganlab.config import CONF_DIR, GROUPS, register_schema
from ganlab.errors import ConfigError, message_prefix
from ganlab.jobs.launchers import check_joblib_jobs, check_plugins, check_slurm_is_here
from ganlab.jobs.sweep_values import check_sweep_values
from ganlab.jobs.train_job import hydra_message, launch
from ganlab.overrides import is_multirun, last_value, override_key, quoted, split_override
from ganlab.unknown_keys import check_keys

USAGE = """usage: ganlab <command> [options]     ganlab <command> --help: its options     ganlab --version

commands:
  train    train a GAN: ganlab train model=dcgan loss=wgan_gp data=mnist
           sweep:  ganlab train -m loss=gan,hinge optimizer.lr_d=1e-4,4e-4 [hydra/launcher=joblib|slurm]
           search: ganlab train hparams_search=ring8_optuna (Optuna; pip install "ganlab[sweep]")
           resume: ganlab train resume=outputs/<date>/<time> [trainer.steps=...]
           options and groups: ganlab train --help
  sample   draw from a trained generator: ganlab sample run=<run dir or checkpoint> n=64 out=grid.png
           options: n, out (.png/.jpg grid, .npz raw), seed, interpolate=true, steps, class, truncation, device
           your images through an image-to-image G: ganlab sample run=<run> input=<image or folder> out=<folder>
  eval     compute the metrics that fit the data and write metrics.json in the run dir:
           ganlab eval run=<run dir or checkpoint> [features=auto|inception|digits|mnist|fashion_mnist] [n=10000]
           options: features, n, seed, batch_size, device, out
  export   a trained generator as files that leave ganlab (safetensors weights + generator.json + model card;
           pt2: torch.export, runs with torch alone; onnx: pip install "ganlab[onnx]"):
           ganlab export run=<run dir or checkpoint> out=<new folder> [format=safetensors,pt2,onnx]
           load it back in Python: ganlab.load_generator("<folder>").sample(16, seed=0)
  browse   a static HTML page of a run (samples over training, curves, interpolation, neighbours, config) or of
           a sweep (its runs ranked, each linked): ganlab browse run=<run or sweep dir> [out=page.html]
  report   compare the runs of a sweep: status, steps, final metrics, best first; writes report.md/.csv/.png:
           ganlab report outputs/multirun/<date>/<time> [more run dirs] [out=<dir>] [metric=<name>]
"""
COMMANDS = ("train", "sample", "eval", "export", "report", "browse")
# The key=value commands: their module under ganlab/commands/, and its options class in commands/schemas.py.
KEY_VALUE_COMMANDS = {
    "sample": ("sample", "SampleOptions"),
    "eval": ("evaluate", "EvalOptions"),
    "export": ("export", "ExportOptions"),
    "report": ("report", "ReportOptions"),
    "browse": ("browse", "BrowseOptions"),
}


def _resume_overrides(args: list[str]) -> list[str]:
    """`resume=X` recomposes the original run: its stored overrides first, the new ones after (they win),
    and Hydra's run directory pointed back at the original run."""
    given = last_value(args, "resume")
    if given is None or given == "auto":
        return args  # resume=auto: the same command again; train() finds the run's newest good checkpoint
    if is_multirun(args):
        raise ConfigError("resume= continues one run; resume the jobs of a sweep one at a time.")
    from ganlab.checkpoint import load_checkpoint, resolve_checkpoint, run_dir_of

    path = resolve_checkpoint(given)
    keep = [a for a in args if override_key(a) != "resume"]
    overridden = {override_key(a) for a in keep} | {"resume"}
    stored = [
        a
        for a in load_checkpoint(path, mmap=True).get("overrides", [])
        if override_key(a) not in overridden and not override_key(a).startswith("hydra.")
    ]
    new = [*stored, *keep, f"resume={quoted(str(path))}"]
    run_dir = run_dir_of(path)
    if run_dir is not None:
        # Continue in place; leave the run's .hydra/ as the record of how it was first launched.
        new += [f"hydra.run.dir={quoted(str(run_dir))}", "hydra.output_subdir=null"]
    return new


def _distributed_overrides(args: list[str]) -> list[str]:
    """Under torchrun: join the process group, and give every rank one run directory (named from rank 0's
    clock: the ranks' own clocks may straddle a second) in which rank 0 alone writes Hydra's files and logs."""
    from ganlab.distributed import broadcast_text, init_from_env, launched_by_torchrun

    if not launched_by_torchrun():
        return args
    if is_multirun(args):
        raise ConfigError(
            "torchrun trains one run with several processes; a sweep (-m, hparams_search) cannot run inside it. "
            "Sweep with hydra/launcher=slurm, each job asking for its GPUs, or launch one torchrun per setting."
        )
    dist = init_from_env()
    stamp = broadcast_text(datetime.datetime.now().strftime("%Y-%m-%d/%H-%M-%S"))
    extra = [] if any(override_key(a) == "hydra.run.dir" for a in args) else [f"hydra.run.dir=outputs/{stamp}"]
    if not dist.is_main:
        extra += ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    return [*args, *extra]


OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # a name, not a number: Hydra would parse `0` as int


def _check_group_choices(args: list[str]) -> None:
    """`model=dcgan` picks one YAML of a group. Hydra also takes lists and numbers there and then fails deep
    inside itself: refuse anything but option names (comma-separated for a sweep) up front."""
    multirun = is_multirun(args)
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        group, value = split_override(arg)
        value = value or ""
        if group not in (*GROUPS, "debug", "experiment", "hparams_search"):
            continue
        options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        function = SWEEP_FUNCTION.match(value) if multirun else None
        if function is not None:  # Hydra's sweep functions: choice(a,b), glob(pattern), glob(*,exclude=...)
            _check_sweep_function(arg, group, function.group(1), function.group(2), options)
            continue
        names = value.split(",") if multirun else [value]
        if not all(OPTION_NAME.match(name) for name in names):
            sweep = "" if multirun else "; a sweep over several takes -m"
            raise ConfigError(f"{arg}: {group} takes the name of one option ({', '.join(options)}){sweep}.")


SWEEP_FUNCTION = re.compile(r"^(glob|choice)\((.*)\)$")


def _check_sweep_function(arg: str, group: str, name: str, inside: str, options: list[str]) -> None:
    """`-m 'loss=glob(w*)'` and `-m 'model=choice(mlp,dcgan)'` go to Hydra, which expands them over the group's
    options; one that would select nothing, or a name that is not an option, is refused here with the options."""
    parts = [p.strip().strip("'\"") for p in inside.split(",") if p.strip()]
    if name == "choice":
        chosen = parts
        unknown = [p for p in parts if p not in options]
    else:
        include = [p for p in parts if not p.startswith("exclude=")]
        exclude = [p.removeprefix("exclude=") for p in parts if p.startswith("exclude=")]
        chosen = [o for o in options if any(fnmatch.fnmatch(o, i) for i in include or ["*"])]
        chosen = [o for o in chosen if not any(fnmatch.fnmatch(o, e) for e in exclude)]
        unknown = []
    if unknown or not chosen:
        verb = "is" if len(unknown) == 1 else "are"
        what = f"{', '.join(unknown)} {verb} not an option" if unknown else "selects none"
        raise ConfigError(f"{arg}: {what} of {group} ({', '.join(options)}).")


def _fail(message: str) -> NoReturn:
    print(f"{message_prefix()}: error: {message.strip()}", file=sys.stderr)
    sys.exit(2)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted (not the stream of when it was made)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _log_to_stderr() -> None:
    logger = logging.getLogger("ganlab")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("ganlab: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _run_command(command: str, args: list[str]) -> None:
    """The key=value commands (`sample`, `eval`, `export`, `report`, `browse`): no Hydra run directory; mistakes
    exit 2."""
    _log_to_stderr()  # e.g. "training the mnist feature classifier once"
    try:
        from ganlab.commands import schemas

        module_name, options_class = KEY_VALUE_COMMANDS[command]
        schema = getattr(schemas, options_class)
        if {"-h", "--help"} & set(args):
            from ganlab.commands.help import command_help

            module = importlib.import_module(f"ganlab.commands.{module_name}")
            print(command_help(module, schema))
            return
        _check_options(command, schema, args)  # a typo is answered before torch is imported (seconds)
        importlib.import_module(f"ganlab.commands.{module_name}").main(args)
    except ConfigError as err:
        _fail(str(err))
    except OSError as err:
        if err.errno not in SPACE_ERRNOS:
            raise
        _fail(f"could not write {err.filename or 'a file'} ({err.strerror}).")  # a cache, e.g. the classifier's


def _check_options(command: str, schema: type, args: list[str]) -> None:
    """The command's key=value options parsed as its own main() will parse them, up front."""
    from ganlab.commands.options import parse_options, split_data_overrides

    if command == "report":
        return  # it takes directories besides options: report.py sorts them out, and imports no torch to do so
    if command in ("sample", "eval"):
        args, _ = split_data_overrides(args, command)
    parse_options(schema, args, command)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0 if args else 2)
    if args[0] in ("-V", "--version"):
        from ganlab import __version__

        print(f"ganlab {__version__}")
        return
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        _fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}.\n\n{USAGE}")
    if command in KEY_VALUE_COMMANDS:
        _run_command(command, rest)
        return
    register_schema()
    # Let exceptions reach us instead of Hydra printing them and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna imports it; its "setup plugin ..." lines are noise
    try:
        _check_group_choices(rest)
        check_keys(rest)
        check_plugins(rest)
        check_joblib_jobs(rest)
        check_sweep_values(rest)
        check_slurm_is_here(rest)
        resume = last_value(rest, "resume")
        rest = _distributed_overrides(_resume_overrides(rest))
        code = launch(rest, resume)  # ganlab/jobs/train_job.py: one run or a sweep, and how each job ended
    except (ConfigError, HydraException) as err:
        _fail(hydra_message(err))
    except OSError as err:
        if err.errno in SPACE_ERRNOS:  # Hydra's own files, written before the job starts
            where = err.filename or "the run directory"
            print(f"{message_prefix()}: could not write {where} ({err.strerror}). Free some space.", file=sys.stderr)
            sys.exit(1)
        if err.filename is None:  # not about a path we were asked to write: a bug, keep the traceback
            raise
        if err.errno == errno.EEXIST and os.path.isfile(err.filename):  # Hydra's makedirs on a file's path
            _fail(
                f"{err.filename} is a file, and the run needs a folder there: choose another hydra.run.dir "
                "(hydra.sweep.dir with -m)."
            )
        _fail(f"cannot write {err.filename}: {err.strerror}. Choose a writable place with hydra.run.dir=<folder>.")
    finally:
        _leave_process_group()
    if code:
        sys.exit(code)


def run() -> None:
    """The `ganlab` console script (and `python -m ganlab`): main(), then an exit without the interpreter's last
    garbage collections. Those walk every object that torch and the torch._dynamo stack it imports (creating any
    optimizer does) have made: about 0.8 s of every command's exit on a 2-core CPU, a second of a one-minute run.
    Frozen objects are skipped; atexit handlers (logging's flush, multiprocessing's joins) still run, and every
    file ganlab writes is closed by then. Not in main() itself, which tests call in-process.

    A rank of a torchrun does not go through the interpreter's exit at all (`exit_rank`)."""
    code: int | str | None = 0
    try:
        main()
    except SystemExit as stop:
        if not _torchrun_rank():
            raise
        code = stop.code
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which stops at a step boundary): one line, not
        # Python's traceback; 130, as a shell reports a process ended by SIGINT
        print(f"\n{message_prefix()}: interrupted by Ctrl-C.", file=sys.stderr)
        code = 128 + signal.SIGINT
        if not _torchrun_rank():
            sys.exit(code)
    finally:
        gc.freeze()
    if _torchrun_rank():
        exit_rank(code)


def _torchrun_rank() -> bool:
    if "torch.distributed" not in sys.modules:  # never import torch just to find out
        return False
    from ganlab.distributed import launched_by_torchrun

    return launched_by_torchrun()


def exit_rank(code: int | str | None) -> NoReturn:
    """End a torchrun rank at once, its files closed and its output flushed, without the interpreter's exit.

    gloo's worker threads free a collective's tensors a moment after the collective returns. When that comes
    during the interpreter's exit, freeing a tensor made in Python takes the GIL, which ends the thread inside
    C++ code that cannot be unwound: std::terminate, SIGABRT ("terminate called without an active exception"),
    and torchrun reports a finished run as failed. A core dump of such a rank showed exactly this
    (ProcessGroupGloo::runLoop -> ~AsyncAllreduceWork -> TensorImpl::decref_pyobject -> take_gil ->
    pthread_exit). It struck about 1 run in 10 on a loaded 2-core machine."""
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _leave_process_group() -> None:
    if "torch.distributed" in sys.modules:  # never import torch just to find out
        from ganlab.distributed import destroy

        destroy()
