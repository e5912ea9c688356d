"""The three roles as Django groups with permissions, kept in step after every migrate."""

from django.contrib.auth.models import Group, Permission

ANNOTATOR, RESEARCHER, ADMIN = "annotator", "researcher", "admin"
ROLES = (ANNOTATOR, RESEARCHER, ADMIN)

_ANNOTATOR_PERMISSIONS = ["arena.add_judgment", "arena.view_system", "arena.view_prompt"]
_RESEARCHER_PERMISSIONS = _ANNOTATOR_PERMISSIONS + [
    f"arena.{action}_{model}"
    for model in ("system", "prompt", "output", "comparison")
    for action in ("view", "add", "change")
] + ["arena.view_judgment", "arena.view_judge", "arena.review_judge"]
# Admins manage every Duet record and the accounts; researchers never manage users.
_ADMIN_APPS = ("arena", "annotation", "routing", "training", "authtoken")
_ADMIN_EXTRA = [f"auth.{action}_{model}" for model in ("user", "group") for action in ("view", "add", "change", "delete")]


def _permissions(codes):
    found = []
    for code in codes:
        app_label, codename = code.split(".")
        found.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
    return found


def _app_role_permissions(role: str) -> list[str]:
    """Other apps add to a role by declaring `ROLE_PERMISSIONS = {role: [codes]}` in their
    own `roles.py`, so the arena never imports them by name."""
    from importlib import import_module

    from django.apps import apps

    codes = []
    for config in apps.get_app_configs():
        if config.name == "arena":
            continue
        try:
            module = import_module(f"{config.name}.roles")
        except ModuleNotFoundError:
            continue
        codes.extend(getattr(module, "ROLE_PERMISSIONS", {}).get(role, []))
    return codes


def ensure_roles(**kwargs) -> None:
    admin_codes = [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(content_type__app_label__in=_ADMIN_APPS).select_related("content_type")
    ] + _ADMIN_EXTRA
    base = {ANNOTATOR: _ANNOTATOR_PERMISSIONS, RESEARCHER: _RESEARCHER_PERMISSIONS, ADMIN: admin_codes}
    for role, codes in base.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(_permissions(codes + _app_role_permissions(role)))


def assign_role(user, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    ensure_roles()
    user.groups.set([Group.objects.get(name=role)])
    # Researchers and admins use the Django admin; their permissions decide what they see there.
    user.is_staff = role in (RESEARCHER, ADMIN)
    user.save(update_fields=["is_staff"])
