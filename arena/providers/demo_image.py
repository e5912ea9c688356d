"""Procedural image "systems" for demos and tests: Pillow drawings shaped by the prompt's words.

Each word of the prompt becomes a colour (its hash picks the hue), and the prompt's hash
seeds the layout, so the same prompt and config always give the same PNG, different
prompts give visibly different pictures, and each ``style`` looks like a different system.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import re
import time

from .base import Generated, GenerationRequest, ProviderBackend

STYLES = ("circles", "stripes", "gradient", "mosaic")


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x00".join(str(part) for part in parts).encode()).digest()


def word_palette(prompt_text: str, saturation: float, lightness: float) -> list[tuple[int, int, int]]:
    """One colour per distinct word (up to 12), in order of appearance; a single grey-blue for none."""
    words = list(dict.fromkeys(re.findall(r"\w+", prompt_text.lower())))[:12]
    palette = []
    for word in words or ["duet"]:
        digest = _digest("word", word)
        hue = digest[0] / 255
        light = min(0.9, max(0.15, lightness + (digest[1] / 255 - 0.5) * 0.3))
        r, g, b = colorsys.hls_to_rgb(hue, light, saturation)
        palette.append((round(r * 255), round(g * 255), round(b * 255)))
    return palette


class DemoImageProvider(ProviderBackend):
    """Config: ``style`` (circles | stripes | gradient | mosaic), ``size`` (pixels, square),
    ``saturation`` and ``lightness`` (0..1), ``seed``."""

    modality = "image"

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.style = self._choice("style", STYLES, "circles")
        self.size = self._number("size", 512, int, 64, 2048)
        self.saturation = self._number("saturation", 0.65, float, 0.0, 1.0)
        self.lightness = self._number("lightness", 0.55, float, 0.0, 1.0)
        self.seed = self._number("seed", 0, int)

    def generate(self, requests: list[GenerationRequest]) -> list[Generated]:
        return [self._render(request) for request in requests]

    def _render(self, request: GenerationRequest) -> Generated:
        started = time.perf_counter()
        rng = random.Random(_digest(self.style, self.seed, request.seed, request.prompt_text))
        palette = word_palette(request.prompt_text, self.saturation, self.lightness)
        image = getattr(self, f"_draw_{self.style}")(rng, palette)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")  # Pillow writes no text chunks unless asked: nothing names the system
        return Generated(
            media=buffer.getvalue(),
            media_extension="png",
            media_type="image/png",
            metadata={"width": image.width, "height": image.height},
            generation_time_s=time.perf_counter() - started,
        )

    def _draw_circles(self, rng: random.Random, palette):
        from PIL import Image, ImageDraw

        size = self.size
        background = tuple(channel // 4 for channel in palette[0])
        image = Image.new("RGB", (size, size), background)
        overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for index in range(10 + 3 * len(palette)):
            colour = palette[index % len(palette)]
            radius = rng.randint(size // 24, size // 5)
            x, y = rng.randint(0, size), rng.randint(0, size)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*colour, rng.randint(90, 200)))
        return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")

    def _draw_stripes(self, rng: random.Random, palette):
        from PIL import Image, ImageDraw

        size = self.size
        # Draw on a larger canvas, rotate, crop: diagonal stripes with no empty corners.
        canvas = Image.new("RGB", (size * 2, size * 2), palette[0])
        draw = ImageDraw.Draw(canvas)
        x, index = 0, 0
        while x < size * 2:
            width = rng.randint(size // 40, size // 8)
            draw.rectangle((x, 0, x + width, size * 2), fill=palette[index % len(palette)])
            x, index = x + width, index + 1
        angle = rng.choice((0, 15, 30, 45, 60, 75, 90, 120, 135))
        rotated = canvas.rotate(angle, resample=Image.Resampling.BICUBIC)
        return rotated.crop((size // 2, size // 2, size // 2 + size, size // 2 + size))

    def _draw_gradient(self, rng: random.Random, palette):
        import numpy as np
        from PIL import Image

        size = self.size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size  # shape (size, size) each
        if len(palette) == 1:  # one word: blend it with its own shadow
            palette = palette + [tuple(channel // 3 for channel in palette[0])]
        colours = np.array(palette, dtype=np.float32)  # shape (n_colours, 3)
        # Each colour radiates from its own centre; pixels blend the colours by inverse distance.
        centres = np.array([(rng.random(), rng.random()) for _ in colours], dtype=np.float32)
        distances = np.sqrt((xs[None] - centres[:, 0, None, None]) ** 2 + (ys[None] - centres[:, 1, None, None]) ** 2)
        weights = 1.0 / (distances + 0.04) ** 3  # shape (n_colours, size, size)
        weights /= weights.sum(axis=0, keepdims=True)
        pixels = np.einsum("kyx,kc->yxc", weights, colours)
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")

    def _draw_mosaic(self, rng: random.Random, palette):
        from PIL import Image, ImageDraw

        size = self.size
        cells = rng.choice((6, 8, 12, 16))
        step = size / cells
        image = Image.new("RGB", (size, size), (20, 20, 24))
        draw = ImageDraw.Draw(image)
        for row in range(cells):
            for column in range(cells):
                colour = rng.choice(palette)
                shade = rng.uniform(0.7, 1.15)
                fill = tuple(min(255, int(channel * shade)) for channel in colour)
                box = (column * step + 2, row * step + 2, (column + 1) * step - 2, (row + 1) * step - 2)
                if rng.random() < 0.3:
                    draw.ellipse(box, fill=fill)
                else:
                    draw.rectangle(box, fill=fill)
        return image
