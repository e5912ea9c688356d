# Researchers configure routing, start judging and routing jobs and read the audit;
# annotators never see routing (admins get every routing permission from arena.roles).
ROLE_PERMISSIONS = {
    "researcher": [
        "routing.view_projectrouting", "routing.change_projectrouting",
        "routing.view_judgingjob", "routing.add_judgingjob",
        "routing.view_routingdecision", "routing.view_unusableverdict",
    ],
}
