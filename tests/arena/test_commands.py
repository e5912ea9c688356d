import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from arena.models import Output, Prompt, System


def test_create_account_with_role(db):
    call_command("create_account", "alice", "--role", "researcher", "--password", "a-long-password")
    user = get_user_model().objects.get(username="alice")
    assert authenticate(username="alice", password="a-long-password") == user
    assert list(user.groups.values_list("name", flat=True)) == ["researcher"]
    assert user.is_staff and not user.is_superuser
    assert user.has_perm("arena.view_judgment") and not user.has_perm("auth.add_user")


def test_create_account_rejects_weak_password(db):
    with pytest.raises(CommandError, match="password rejected"):
        call_command("create_account", "bob", "--password", "short")
    assert not get_user_model().objects.filter(username="bob").exists()


def test_admin_role_manages_users_annotator_only_votes(db):
    call_command("create_account", "root", "--role", "admin", "--password", "a-long-password")
    call_command("create_account", "ann", "--role", "annotator", "--password", "a-long-password")
    admin = get_user_model().objects.get(username="root")
    annotator = get_user_model().objects.get(username="ann")
    assert admin.has_perm("auth.change_user") and admin.has_perm("arena.change_system")
    assert annotator.has_perm("arena.add_judgment") and not annotator.has_perm("arena.view_output")
    assert not annotator.is_staff


def test_seed_demo_sync_fills_every_modality(db, tiny_model_dir, settings, tmp_path):
    # given the demo's text systems on a tiny random model instead of SmolLM2
    settings.DEMO_TEXT_MODEL = str(tiny_model_dir)
    settings.GENERATION_MAX_NEW_TOKENS = 4
    settings.MEDIA_ROOT = str(tmp_path)
    # when
    call_command("seed_demo", "--sync")
    # then at least three systems per modality, with outputs for every prompt
    for modality, n_prompts in (("text", 20), ("image", 10), ("audio", 10)):
        systems = System.objects.filter(modality=modality)
        assert systems.count() >= 3
        assert Prompt.objects.filter(modality=modality).count() >= n_prompts
        assert Output.objects.filter(system__modality=modality).count() == systems.count() * n_prompts
    assert all(s.is_demo for s in System.objects.exclude(modality="text"))
    audio = Output.objects.filter(system__modality="audio").first()
    assert audio.media_type == "audio/wav" and audio.metadata["duration"] >= 5
    # and running it again creates nothing twice
    call_command("seed_demo", "--sync")
    assert Output.objects.count() == 120
    call_command("seed_demo", "--if-empty")
    assert System.objects.count() == 9
