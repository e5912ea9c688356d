import json
import time

from django.core.management.base import BaseCommand, CommandError

from arena.errors import DuetError
from training import actions
from training.models import TrainingRun


class Command(BaseCommand):
    help = "Queue a training run exactly as the dashboard does; --wait waits for it and prints the result."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["reward", "dpo"], required=True)
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--project")
        source.add_argument("--arena")
        parser.add_argument("--base", help="base system name or model folder (default: SmolLM2-135M-Instruct)")
        parser.add_argument("--loss", choices=actions.LOSSES, default="sigmoid")
        parser.add_argument("--max-steps", type=int, default=None)
        adapter = parser.add_mutually_exclusive_group()
        adapter.add_argument("--lora", dest="adapter", action="store_const", const="lora")
        adapter.add_argument("--full", dest="adapter", action="store_const", const="full")
        parser.add_argument("--aggregate", choices=["majority", "dawid-skene", "none"], default="dawid-skene")
        parser.add_argument("--min-confidence", type=float, default=0.0)
        parser.add_argument("--include-ties", action="store_true")
        parser.add_argument("--source", choices=["human", "judge", "all"], default="human")
        parser.add_argument("--wait", action="store_true", help="wait for the run to end")
        parser.add_argument("--timeout", type=float, default=24 * 3600, help="seconds --wait waits at most")
        parser.add_argument("--format", choices=["text", "json"], default="text", dest="fmt")

    def handle(self, *args, **options):
        try:
            request = actions.check_run_request(
                kind=options["kind"], project=options["project"], arena=options["arena"], base=options["base"],
                loss=options["loss"], max_steps=options["max_steps"], adapter=options["adapter"] or "auto",
                filters={"aggregate": options["aggregate"], "min_confidence": options["min_confidence"],
                         "include_ties": options["include_ties"], "source": options["source"]},
            )  # fmt: skip
        except DuetError as exc:
            raise CommandError(exc.message) from None
        run = actions.do_create_run(request)
        if not options["wait"]:
            self._print(run, options["fmt"])
            return
        deadline = time.monotonic() + options["timeout"]
        while not run.is_finished:
            if time.monotonic() > deadline:
                raise CommandError(f"run {run.pk} did not finish within {options['timeout']} s (still {run.status})")
            time.sleep(1)
            actions.mark_stale_runs()
            run.refresh_from_db()
        self._print(run, options["fmt"])
        if run.status == "failed":
            raise CommandError(f"run {run.pk} failed: {run.error.strip().splitlines()[-1] if run.error else ''}")

    def _print(self, run: TrainingRun, fmt: str) -> None:
        body = {
            "id": run.pk,
            "status": run.status,
            "kind": run.kind,
            "metrics": run.metrics,
            "produced_system": run.produced_system.name if run.produced_system_id else None,
        }
        if fmt == "json":
            self.stdout.write(json.dumps(body, indent=2, default=str))
        else:
            self.stdout.write(f"run {run.pk} ({run.kind}): {run.status}")
            for key in ("heldout_accuracy", "ranking_accuracy", "base_ranking_accuracy", "train_loss"):
                if run.metrics.get(key) is not None:
                    self.stdout.write(f"  {key}: {run.metrics[key]:.3f}")
            if body["produced_system"]:
                self.stdout.write(f"  produced system: {body['produced_system']}")
