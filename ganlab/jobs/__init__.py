"""Job control: how a run or a sweep of runs starts, stops cleanly, fails, and is requeued.

The story of a SIGTERM (a cluster's pre-emption, `scancel`, `kill`) or a Ctrl-C, from arrival to requeue:

1. A run trains inside `signals.StopRequests`. Its handler only records the signal; the loop (ganlab/train.py)
   reads it once per step, writes a checkpoint at the step boundary, and raises `errors.RunInterrupted`
   (exit code 128 + signal). Under torchrun the ranks agree on the step, so that they stop together.
2. In a sweep, `train_job.launch` holds `signals.SweepStops` in the main process. A signal that reaches only
   the main process is passed on to the worker processes; a stopped sweep starts no later job
   (`signals.pending_stop`), and the main process ends with 128 + signal and a line on how to go on
   (re-run the same command with resume=auto).
3. joblib's workers start with `signals.catch_stops_in_worker` (set by `launchers.workers_that_catch_stops`),
   so that a worker between jobs survives the signal: a dead worker would break the pool, which then kills the
   others in the middle of their checkpoints. A job stopped in a worker comes back as `launchers.JobFailed`,
   an Exception that joblib collects like a result.
4. Under submitit (hydra/launcher=slurm), SIGUSR2 announces the time limit: `launchers.SubmititRequeue` turns
   it into the same stop at a step boundary, and only then lets submitit requeue the job, which continues
   with resume=auto from its own checkpoint (`launchers.check_same_job`).

`run_lock` keeps one run per run directory (a flock held for the run's whole life); `train_job` is the Hydra
job around ganlab/train.py's `train()` and turns every way a job can end into an exit code and one message.
"""
