import io
import os
import shutil
import wave

import numpy as np
import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run
# "inside" it unless told it is safe (the test thread is not actually async).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytest_plugins = ["tests.conftest_models"]

# `make test` runs two pytest-xdist workers on a 2-core machine: one torch thread each, or
# the two workers' thread pools spin against each other (a tiny Llama's training step took
# ~20 ms on one thread and ~1 s on two beside another busy process). Set before torch is
# imported; subprocesses the tests start inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


# Marks of the tests that start real processes, models or browsers: the files holding them
# take from ~10 s to ~7 min each, the rest a few seconds.
HEAVY_MARKS = ("slow", "browser", "redis", "postgres")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under xdist (`make test`, --dist loadfile --no-loadscope-reorder) the workers take
    whole files in this order, so the heavy files go first, most heavy tests first, and
    the many quick files fill in behind them: a heavy file started last would leave one
    worker running it alone at the end. The order within a file is kept (the journey's
    states run in order). A serial run keeps the collection order."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") or getattr(config.option, "numprocesses", None)):
        return
    def file_of(item) -> str:
        return item.nodeid.split("::")[0]

    heavy: dict[str, int] = {}
    for item in items:
        heavy[file_of(item)] = heavy.get(file_of(item), 0) + any(item.get_closest_marker(m) for m in HEAVY_MARKS)
    position = {path: rank for rank, path in enumerate(heavy)}
    items.sort(key=lambda item: (-heavy[file_of(item)], position[file_of(item)]))


@pytest.fixture(autouse=True)
def _fresh_hot_caches():
    """Each test starts with empty per-process caches (arena.hotcache) and reads the
    change stamps afresh: a test's rows are rolled back without the signals that would
    clear them, and the next test's arena may get the same primary key."""
    from arena import hotcache

    hotcache.forget_stamps()
    hotcache.clear_all()
    yield
    hotcache.clear_all()
    hotcache.forget_stamps()


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    from arena.roles import assign_role

    def make(username, role="annotator", password="correct-horse-battery"):
        user = get_user_model().objects.create_user(username=username, password=password)
        if role:
            assign_role(user, role)
        return user

    return make


@pytest.fixture
def annotator(make_user):
    return make_user("ann", "annotator")


@pytest.fixture
def researcher(make_user):
    return make_user("res", "researcher")


@pytest.fixture
def admin_user(make_user):
    return make_user("boss", "admin")


@pytest.fixture
def client_for():
    from rest_framework.test import APIClient

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


def png_bytes(colour=(200, 30, 30), size=(32, 32)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def wav_bytes(seconds=1.0, frequency=440.0, rate=8000) -> bytes:
    samples = (np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate) * 12000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return buffer.getvalue()


@pytest.fixture
def arena_factory(db, settings, tmp_path):
    """Builds small arenas: `n_systems` systems of a modality with an output for each of
    `n_prompts` prompts (text written out, images/audio real files)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    from django.core.files.base import ContentFile

    from arena.models import Output, Prompt, Provider, System

    def build(modality="text", n_systems=3, n_prompts=2, audio_seconds=1.0, text=None, prefix=""):
        systems = [
            System.objects.create(name=f"{prefix}{modality}-sys-{i}", modality=modality, provider=Provider.UPLOADED)
            for i in range(n_systems)
        ]
        prompts = [
            Prompt.objects.create(text=f"{prefix}{modality} prompt {j}", modality=modality) for j in range(n_prompts)
        ]
        for i, system in enumerate(systems):
            for j, prompt in enumerate(prompts):
                output = Output(system=system, prompt=prompt)
                if modality == "text":
                    output.text = text if text is not None else f"Answer {j} from system {i}: **bold** point."
                elif modality == "image":
                    output.media_type = "image/png"
                    output.metadata = {"width": 32, "height": 32}
                    output.media.save("x.png", ContentFile(png_bytes((40 * i % 255, 80, 20 * j % 255))), save=False)
                else:
                    output.media_type = "audio/wav"
                    output.metadata = {"duration": audio_seconds}
                    output.media.save(
                        "x.wav", ContentFile(wav_bytes(audio_seconds, 220.0 * (i + 1) + 10 * j)), save=False
                    )
                output.save()
        return systems, prompts

    return build


# --- headless Chromium (one browser per test session, shared by every browser test) -------

CHROMIUM = os.environ.get("DUET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install chromium chromium-driver (CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    # Playwright's wait_for_function evaluates strings in the page, which Duet's CSP forbids;
    # bypassing it here also shows that the sanitiser alone keeps hostile outputs inert.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


@pytest.fixture
def login(live_server):
    def do_login(page, username, password="correct-horse-battery"):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return do_login
