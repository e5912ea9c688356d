"""Project-level promises: every setting is documented, commands start fast."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_environment_variable_is_in_the_readme():
    settings_source = (ROOT / "config" / "settings.py").read_text()
    names = set(re.findall(r'env_(?:str|bool|number|list)\(\s*"([A-Z_]+)"', settings_source))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', settings_source))
    command_source = (ROOT / "arena" / "management" / "commands" / "create_account.py").read_text()
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', command_source))
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert len(names) > 10
    assert names - documented == set(), "settings missing from the README's table"


def test_manage_py_does_not_import_torch():
    # The web process and management commands must not pay for the heavy libraries.
    code = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE']='config.settings_test'; django.setup();"
        "import config.urls, arena.api.views, arena.admin, arena.tasks;"
        "from django.core.management import call_command; call_command('check');"
        "bad=[m for m in ('torch','transformers') if m in sys.modules]; print('HEAVY', bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    code = "import config.settings"
    env = {"DUET_PRODUCTION": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_bad_boolean_setting_names_the_variable():
    result = subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT, capture_output=True, text=True, env={"DUET_OPEN_ARENA": "perhaps", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode != 0 and "DUET_OPEN_ARENA must be a boolean" in result.stderr
