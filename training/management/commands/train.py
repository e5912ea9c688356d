import argparse
import json
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from arena.errors import DuetError
from arena.jobs import workers
from training import actions, results, selection
from training.forms import MAX_STEPS
from training.models import RunStatus, TrainingRun
from training.recipes.noise import DEFAULT_METHOD, METHODS

QUEUE = "training"


def _max_steps(text: str) -> int:
    value = int(text)
    if not MAX_STEPS[0] <= value <= MAX_STEPS[1]:
        raise argparse.ArgumentTypeError(f"must be between {MAX_STEPS[0]} and {MAX_STEPS[1]} (omit it for one epoch)")
    return value


class Command(BaseCommand):
    help = (
        "Queue a training run exactly as the dashboard does. --wait waits for a worker to run it and "
        "prints the result; --here runs it in this process instead (one machine, no worker)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["reward", "dpo"], required=True)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--project")
        source.add_argument("--arena")
        parser.add_argument("--base", help="base system name or model folder (default: SmolLM2-135M-Instruct)")
        parser.add_argument("--loss", choices=actions.LOSSES, default="sigmoid")
        parser.add_argument(
            "--method", choices=list(METHODS), default=DEFAULT_METHOD,
            help="what the run does with who judged what. " + " ".join(
                f"{name}: {method.help}" for name, method in METHODS.items()),
        )  # fmt: skip
        parser.add_argument("--flip-rate", type=float, default=None,
                            help="rdpo only: the share of wrong labels (default: the quality report's estimate)")
        parser.add_argument("--max-steps", type=_max_steps, default=None, help="omit for one epoch")
        adapter = parser.add_mutually_exclusive_group()
        adapter.add_argument("--lora", dest="adapter", action="store_const", const="lora")
        adapter.add_argument("--full", dest="adapter", action="store_const", const="full")
        parser.add_argument("--aggregate", choices=["majority", "dawid-skene", "none"], default="dawid-skene")
        parser.add_argument("--min-confidence", type=float, default=0.0)
        parser.add_argument("--include-ties", action="store_true")
        parser.add_argument("--source", choices=["human", "judge", "all"], default="human")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--wait", action="store_true", help="wait for a worker to run it, then print the result")
        where.add_argument("--here", action="store_true", help="run it in this process, without a worker")
        parser.add_argument("--timeout", type=float, default=24 * 3600, help="seconds --wait waits for the run at most")
        parser.add_argument(
            "--worker-wait", type=float, default=10.0,
            help=f"seconds --wait waits for a worker consuming the `{QUEUE}` queue before giving up",
        )  # fmt: skip
        parser.add_argument("--format", choices=["text", "json"], default="text", dest="fmt")

    def handle(self, *args, **options):
        try:
            request = actions.check_run_request(
                kind=options["kind"], project=options["project"], arena=options["arena"], base=options["base"],
                loss=options["loss"], max_steps=options["max_steps"], adapter=options["adapter"] or "auto",
                filters={"aggregate": options["aggregate"], "min_confidence": options["min_confidence"],
                         "include_ties": options["include_ties"], "source": options["source"]},
                method=options["method"], flip_rate=options["flip_rate"],
            )  # fmt: skip
            count = selection.check_enough_pairs(request)
        except DuetError as exc:
            raise CommandError(exc.message) from None

        if options["here"]:
            run = actions.do_create_run(request, queue=False)
            self.stderr.write(f"run {run.pk}: {count.describe()}; running here (Ctrl-C cancels it)")
            self._run_here(run)
        elif options["wait"]:
            # Before queueing: a run nobody will pick up is not left behind in the queue.
            if not workers.wait_for_worker(QUEUE, options["worker_wait"]):
                raise CommandError(workers.no_worker_message(QUEUE))
            run = actions.do_create_run(request)
            self.stderr.write(f"run {run.pk}: {count.describe()}; queued on `{QUEUE}`")
            self._wait(run, options["timeout"], options["worker_wait"])
        else:
            run = actions.do_create_run(request)
            if workers.queue_has_worker(QUEUE) is False:
                self.stderr.write(f"note: {workers.no_worker_message(QUEUE)} The run stays queued until a worker starts.")
            self._print(run, options["fmt"])
            return
        run.refresh_from_db()
        self._print(run, options["fmt"])
        if run.status == RunStatus.FAILED:
            raise CommandError(f"run {run.pk} failed: {results.error_summary(run.error)}")

    def _wait(self, run: TrainingRun, timeout: float, worker_wait: float) -> None:
        deadline = time.monotonic() + timeout
        unattended_since = None  # when the queued run last had no worker to go to
        last_line = ""
        while True:
            run.refresh_from_db()
            last_line = self._report(run, last_line)
            if run.is_finished:
                return
            if time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} did not finish within {timeout:g} s (still {run.status})")
            if run.status == RunStatus.QUEUED and workers.queue_has_worker(QUEUE) is False:
                unattended_since = unattended_since or time.monotonic()
                if time.monotonic() - unattended_since > worker_wait:
                    raise CommandError(f"run {run.pk} is still queued: {workers.no_worker_message(QUEUE)}")
            else:
                unattended_since = None
            time.sleep(1)

    def _run_here(self, run: TrainingRun) -> None:
        """The job in a thread of this process, its progress followed from the main thread,
        so Ctrl-C asks the run to stop at its next step like the dashboard's Cancel."""

        def execute():
            try:
                actions.execute_run(run.pk)
            finally:
                connection.close()  # the thread's own database connection

        job = threading.Thread(target=execute, name=f"training-run-{run.pk}")
        job.start()
        last_line = ""
        try:
            while job.is_alive():
                job.join(timeout=1)
                run.refresh_from_db()
                last_line = self._report(run, last_line)
        except KeyboardInterrupt:
            self.stderr.write(f"run {run.pk}: cancelling at the next step")
            run.refresh_from_db()
            if not run.is_finished:
                actions.do_cancel_run(run)
            job.join()

    def _report(self, run: TrainingRun, last_line: str) -> str:
        line = f"run {run.pk}: {run.status}"
        progress = results.describe_progress(run.progress)
        if progress and run.status == RunStatus.RUNNING:
            line += f" · {progress}"
        if line != last_line:
            self.stderr.write(line)
        return line

    def _print(self, run: TrainingRun, fmt: str) -> None:
        body = {
            "id": run.pk,
            "status": run.status,
            "kind": run.kind,
            "method": run.recipe.get("training", {}).get("method", DEFAULT_METHOD),
            "n_pairs": run.n_pairs,
            "metrics": run.metrics,
            "produced_system": run.produced_system.name if run.produced_system_id else None,
        }
        if fmt == "json":
            self.stdout.write(json.dumps(body, indent=2, default=str))
            return
        self.stdout.write(f"run {run.pk} ({run.kind}, method {body['method']}): {run.status}")
        for evaluation in results.evaluations(run.metrics):
            if evaluation.key in ("preference_accuracy", "ranking_accuracy", "base_ranking_accuracy"):
                self.stdout.write(f"  {evaluation.label}: {evaluation.short()}")
        if run.metrics.get("train_loss") is not None:
            self.stdout.write(f"  train loss: {results.format_value(run.metrics['train_loss'])}")
        if body["produced_system"]:
            self.stdout.write(f"  produced system: {body['produced_system']}")
