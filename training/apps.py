from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"

    def ready(self):
        # Every worker records which queues it consumes, so `train --wait` can tell when
        # nothing consumes `training` (training.workers).
        from . import receivers, workers

        workers.connect_signals()
        receivers.connect()
