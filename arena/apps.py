from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ArenaConfig(AppConfig):
    name = "arena"
    verbose_name = "Arena"

    def ready(self):
        from . import hotcache, receivers
        from .jobs import workers
        from .roles import ensure_roles

        hotcache.connect_signals()
        # Every worker records which queues it consumes, so `train --wait` and the pages
        # can tell when nothing consumes a queue (arena.jobs.workers).
        workers.connect_signals()
        receivers.connect()  # the board's refresh and webhooks hear arena.events

        post_migrate.connect(ensure_roles, dispatch_uid="duet.ensure_roles")

        from django.db.models.signals import post_save

        from .models import Prompt
        from .similar.vectors import prompt_created

        # New prompts are embedded by the worker (arena.tasks.embed_prompts), for the boards
        # for prompts like one prompt.
        post_save.connect(prompt_created, sender=Prompt, dispatch_uid="duet.arena.embed_new_prompt")
