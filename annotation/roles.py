"""Annotation's additions to the roles (read by arena.roles.ensure_roles after migrate).

Annotators see the projects they are members of; researchers run projects: create and
edit them, import items, manage members, and adjudicate. Project reviewers adjudicate
through their membership, not through a role."""

_MANAGED = ("project", "projectmembership", "projectitem")

ROLE_PERMISSIONS = {
    "annotator": ["annotation.view_project"],
    "researcher": [
        *(f"annotation.{action}_{model}" for model in _MANAGED for action in ("view", "add", "change", "delete")),
        "annotation.view_assignment",
        "annotation.view_adjudication",
        "annotation.add_adjudication",
    ],
}
