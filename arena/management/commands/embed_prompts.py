from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Embed every prompt that has no embedding from the configured model (all-MiniLM-L6-v2 by default), "
            "for the boards for prompts like one prompt. Safe to rerun: done prompts are skipped.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="embed at most this many prompts")

    def handle(self, *args, **options):
        from arena.similar.vectors import embed_missing_prompts
        from arena.similar.embedding import EmbeddingModelError, configured_model

        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            written = embed_missing_prompts(limit=options["limit"])
        except EmbeddingModelError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"embedded {written} prompt(s) with {configured_model()}")
