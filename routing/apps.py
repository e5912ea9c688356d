from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"

    def ready(self):
        # annotation announces imports with a signal, so it never imports routing.
        from annotation.actions import items_imported

        from .actions import route_imported_items

        items_imported.connect(route_imported_items, dispatch_uid="duet.routing.route_imported_items")
