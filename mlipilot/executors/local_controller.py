"""A local job's controller: submitit's (submitit.local.local.Controller) in the standard library only.

Run as `python -I -S local_controller.py FOLDER`: no site-packages, so its start costs about 15 ms
where submitit's `python -m submitit.local._local` (site, submitit, numpy) took 85 ms on every local
job's critical path. It does what submitit's does, reading the same environment start_controller
sets: start the task(s) with their logs at FOLDER/<pid>_<k>_log.out|err, forward SIGTERM, send the
timeout signal `signal_delay_s` before the limit, restart a task that asks to be requeued, and kill
the tasks when it ends (a launcher's cancel is a SIGINT). Its pid is the job id; the harness finds a
live one again by its command line (mlipilot.executors.local.controller_folder).
"""

import os
import shlex
import signal
import subprocess
import sys
import time

REQUEUE_RETURN_CODE = 144  # submitit.local.local.LOCAL_REQUEUE_RETURN_CODE
FREQ = 24  # polls per second, as submitit's


def _log(folder: str, job_id: str, k: int, ext: str) -> str:
    path = os.path.join(folder, f"%j_%t_log.{ext}")
    return path.replace("%j", job_id).replace("%t", str(k))


def main(folder: str) -> None:
    env = os.environ
    ntasks = int(env["SUBMITIT_LOCAL_NTASKS"])
    command = shlex.split(env["SUBMITIT_LOCAL_COMMAND"])
    timeout_s = int(env["SUBMITIT_LOCAL_TIMEOUT_S"])
    signal_delay_s = int(env["SUBMITIT_LOCAL_SIGNAL_DELAY_S"])
    usr_sig = int(env["MLIPILOT_LOCAL_USR_SIG"])
    merged = bool(env.get("SUBMITIT_STDERR_TO_STDOUT"))
    job_id = str(os.getpid())
    folder = folder.replace("%j", job_id)
    tasks: list = []

    def forward(signum, *_):
        for t in tasks:
            try:
                t.send_signal(signum)
            except Exception:
                pass

    signal.signal(signal.SIGTERM, forward)
    for _ in range(6):  # submitit's max_retry
        files = []
        try:
            os.makedirs(folder, exist_ok=True)
            for k in range(ntasks):
                out = open(_log(folder, job_id, k, "out"), "a")
                err = out if merged else open(_log(folder, job_id, k, "err"), "a")
                files += [out] if merged else [out, err]
                task_env = dict(env, SUBMITIT_LOCAL_LOCALID=str(k), SUBMITIT_LOCAL_GLOBALID=str(k),
                                SUBMITIT_LOCAL_JOB_ID=job_id)
                tasks.append(subprocess.Popen(command, env=task_env, stdout=out, stderr=err))
            codes = [None]
            for step in range(FREQ * timeout_s):
                codes = [t.poll() for t in tasks]
                if all(c is not None for c in codes):
                    break
                if step == FREQ * (timeout_s - signal_delay_s):
                    forward(usr_sig)
                time.sleep(1.0 / FREQ)
            if REQUEUE_RETURN_CODE not in codes:
                break
        finally:
            for sig in (signal.SIGINT, signal.SIGKILL):
                forward(sig)
                if sig == signal.SIGINT and any(t.poll() is None for t in tasks):
                    time.sleep(0.001)
                    if any(t.poll() is None for t in tasks):
                        time.sleep(1.0)
            tasks.clear()
            for f in files:
                f.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: local_controller.py <submitit folder>")
    main(sys.argv[1])
