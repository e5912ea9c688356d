from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"

    def ready(self):
        # annotation announces imports with a signal (arena.events), so it never imports routing.
        from arena.events import items_imported, judgment_recorded

        from .actions import route_imported_items
        from .receivers import recalibrate_after_human_judgments

        items_imported.connect(route_imported_items, dispatch_uid="duet.routing.route_imported_items")
        # People's judgments on items the judge judged refit its calibration.
        judgment_recorded.connect(recalibrate_after_human_judgments, dispatch_uid="duet.routing.recalibrate")
