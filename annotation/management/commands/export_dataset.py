from django.core.management.base import BaseCommand, CommandError

from annotation.export.options import AGGREGATIONS, FORMATS, SOURCES, ExportError, ExportOptions


class Command(BaseCommand):
    help = "Export a project's or an arena's judgments: preference rows for training, or one row per judgment."

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--project", help="project name")
        scope.add_argument("--arena", help='arena name, or "all" for every arena comparison')
        parser.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
        parser.add_argument("--output", required=True, help="file (a folder for hf); media go to OUTPUT.media.zip")
        parser.add_argument("--aggregate", choices=AGGREGATIONS, default="dawid-skene")
        parser.add_argument("--min-confidence", type=float, default=0.0)
        parser.add_argument("--include-ties", action="store_true", help="trl/hf: keep comparisons judged a tie")
        parser.add_argument("--source", choices=SOURCES, default="human", help="people, automatic judges, or both")
        flagged = parser.add_mutually_exclusive_group()
        flagged.add_argument(
            "--exclude-flagged", dest="exclude_flagged", action="store_true", default=None,
            help="leave out judgments of voters flagged for review (default: DUET_EXCLUDE_FLAGGED_VOTERS)",
        )  # fmt: skip
        flagged.add_argument("--include-flagged", dest="exclude_flagged", action="store_false", default=None,
                             help="keep them (the annotator_flagged column marks them in jsonl/csv/parquet)")

    def handle(self, *args, **options):
        from annotation.export import SelectionError, export_dataset  # the quality math: only when run

        try:
            request = ExportOptions(
                output=options["output"], format=options["fmt"], project=options["project"], arena=options["arena"],
                aggregate=options["aggregate"], min_confidence=options["min_confidence"],
                include_ties=options["include_ties"], source=options["source"],
                exclude_flagged=options["exclude_flagged"],
            )
            result = export_dataset(request, progress=self._progress if options["verbosity"] > 1 else None)
        except (ExportError, SelectionError) as exc:
            raise CommandError(str(exc)) from None
        media = f" and {result.n_media} media files in {result.media_path}" if result.media_path else ""
        self.stdout.write(f"wrote {result.n_rows} rows to {result.path}{media} in {result.seconds:.1f} s")

    def _progress(self, done: int, total: int):
        self.stderr.write(f"{done}/{total}")
