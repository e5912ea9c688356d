"""Foreign keys in the admin link to the related object only for people who may see it.

Django's admin shows a read-only foreign key as a link to the related object's change
page whoever looks (`AdminReadonlyField.get_admin_url`). A researcher, who may view judges
and assignments but not accounts, was shown a link to `/admin/auth/user/<id>/change/`
that answered 403; a project's members (a raw-id field) linked the same way. This middleware keeps the request at hand for the admin's rendering,
and the link is kept only where the related model's admin lets that user view the object;
otherwise the object's name is shown as text.
"""

from __future__ import annotations

import contextvars

from django.contrib.admin import helpers, widgets

_request = contextvars.ContextVar("duet_admin_request", default=None)
_django_get_admin_url = helpers.AdminReadonlyField.get_admin_url


def _get_admin_url(self, remote_field, remote_obj):
    request = _request.get()
    related_admin = self.model_admin.admin_site._registry.get(remote_field.model) if self.model_admin else None
    if request is not None and (
        related_admin is None or not related_admin.has_view_or_change_permission(request, remote_obj)
    ):
        return str(remote_obj)
    return _django_get_admin_url(self, remote_field, remote_obj)


def _may_view(admin_site, model, obj) -> bool:
    request = _request.get()
    if request is None:
        return True
    related_admin = admin_site._registry.get(model)
    return related_admin is not None and related_admin.has_view_or_change_permission(request, obj)


helpers.AdminReadonlyField.get_admin_url = _get_admin_url

_django_label_and_url = widgets.ForeignKeyRawIdWidget.label_and_url_for_value


def _label_and_url_for_value(self, value):
    label, url = _django_label_and_url(self, value)
    if url and not _may_view(self.admin_site, self.rel.model, None):
        url = ""
    return label, url


widgets.ForeignKeyRawIdWidget.label_and_url_for_value = _label_and_url_for_value


class AdminRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
