from django.core.management.base import BaseCommand, CommandError

from arena.board.battle_logs import FORMATS, BattleLogError, describe_skipped, read_battles
from arena.board.snapshots import import_battles
from arena.models import Modality


class Command(BaseCommand):
    help = (
        "Import a battle log (FastChat clean_battle JSON or Duet JSONL) into an arena, atomically. "
        "Rows that are no usable battle are skipped and counted by reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=FORMATS, default="fastchat", dest="fmt")
        parser.add_argument("--arena", required=True, help="arena name (created if new)")
        parser.add_argument("--modality", choices=Modality.values, default=Modality.TEXT)

    def handle(self, *args, path, fmt, arena, modality, **options):
        try:
            result = import_battles(read_battles(path, fmt), arena, modality)
        except BattleLogError as exc:
            raise CommandError(f"nothing imported: {exc}") from None
        message = f"Imported {result.imported} battles into arena {arena!r}; {describe_skipped(result.skipped)}."
        self.stdout.write(self.style.SUCCESS(message) if not result.skipped else self.style.WARNING(message))
