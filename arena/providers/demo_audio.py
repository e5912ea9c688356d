"""Procedural audio "systems" for demos and tests: short synthesised pieces shaped by the prompt.

The prompt's words pick the notes (each word's hash is a scale degree), its hash picks the
key, tempo and length (6 to 10 s, so a 5 s listening gate means something), and ``style``
picks the arrangement, so each style sounds like a different system. Output is 16-bit mono
PCM WAV written with the standard library: same prompt and config, same bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import wave

from .base import Generated, GenerationRequest, ProviderBackend

STYLES = ("sine-melody", "chords", "arpeggio")
MAJOR_PENTATONIC = (0, 2, 4, 7, 9)  # semitones; any two notes of it sound fine together


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x00".join(str(part) for part in parts).encode()).digest()


def prompt_degrees(prompt_text: str, count: int = 16) -> list[int]:
    """Scale degrees (0..9, two octaves of the pentatonic scale), one per word, cycled to ``count``."""
    words = re.findall(r"\w+", prompt_text.lower()) or ["duet"]
    degrees = [_digest("note", word)[0] % 10 for word in words]
    return [degrees[i % len(degrees)] for i in range(count)]


def degree_frequency(root_hz: float, degree: int) -> float:
    octave, step = divmod(degree, len(MAJOR_PENTATONIC))
    return root_hz * 2 ** (octave + MAJOR_PENTATONIC[step] / 12)


class DemoAudioProvider(ProviderBackend):
    """Config: ``style`` (sine-melody | chords | arpeggio), ``sample_rate`` (Hz),
    ``duration_s`` (fixed length; default 6 to 10 s from the prompt), ``seed``."""

    modality = "audio"

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        self.style = self._choice("style", STYLES, "sine-melody")
        self.sample_rate = self._number("sample_rate", 22050, int, 8000, 48000)
        self.duration_s = self._number("duration_s", None, float, 1.0, 60.0)
        self.seed = self._number("seed", 0, int)

    def generate(self, requests: list[GenerationRequest]) -> list[Generated]:
        return [self._render(request) for request in requests]

    def _render(self, request: GenerationRequest) -> Generated:
        import numpy as np

        started = time.perf_counter()
        digest = _digest(self.style, self.seed, request.seed, request.prompt_text)
        duration = self.duration_s or 6.0 + digest[0] / 255 * 4.0
        root_hz = 196.0 * 2 ** ((digest[1] % 12) / 12)  # G3 up to F#4
        beat_s = 60.0 / (80 + digest[2] % 60)  # 80 to 140 beats per minute
        samples = getattr(self, f"_play_{self.style.replace('-', '_')}")(
            prompt_degrees(request.prompt_text), root_hz, beat_s, duration)
        samples = _fade(samples, self.sample_rate)
        peak = float(np.abs(samples).max()) or 1.0
        pcm = np.round(samples / peak * 0.8 * 32767).astype("<i2")
        return Generated(
            media=_wav_bytes(pcm, self.sample_rate),
            media_extension="wav",
            media_type="audio/wav",
            metadata={"duration": round(len(pcm) / self.sample_rate, 3), "sample_rate": self.sample_rate,
                      "channels": 1},
            generation_time_s=time.perf_counter() - started,
        )

    def _silence(self, duration: float):
        import numpy as np

        return np.zeros(int(duration * self.sample_rate))  # shape (n_samples,)

    def _play_sine_melody(self, degrees, root_hz, beat_s, duration):
        import numpy as np

        out = self._silence(duration)
        for index, start in enumerate(np.arange(0.0, duration, beat_s)):
            frequency = degree_frequency(root_hz, degrees[index % len(degrees)])
            _add_note(out, self.sample_rate, start, beat_s * 0.95, frequency, harmonics=(1.0, 0.25))
        return out

    def _play_chords(self, degrees, root_hz, beat_s, duration):
        import numpy as np

        out = self._silence(duration)
        bar_s = beat_s * 4
        for index, start in enumerate(np.arange(0.0, duration, bar_s)):
            base = degrees[index % len(degrees)] % 5
            for offset in (0, 2, 4):  # a stacked triad within the pentatonic scale
                frequency = degree_frequency(root_hz / 2, base + offset)
                _add_note(out, self.sample_rate, start, bar_s, frequency,
                          harmonics=(1.0, 0.5, 0.3, 0.1), attack_s=0.15)
        return out

    def _play_arpeggio(self, degrees, root_hz, beat_s, duration):
        import numpy as np

        out = self._silence(duration)
        step_s = beat_s / 4
        for index, start in enumerate(np.arange(0.0, duration, step_s)):
            chord = degrees[(index // 8) % len(degrees)] % 5
            frequency = degree_frequency(root_hz, chord + (0, 2, 4, 5, 7, 5, 4, 2)[index % 8])
            _add_note(out, self.sample_rate, start, step_s * 1.8, frequency,
                      harmonics=(1.0, 0.0, 0.33, 0.0, 0.2), attack_s=0.005)  # odd harmonics: reedy
        return out


def _add_note(out, sample_rate: int, start: float, length: float, frequency: float,
              harmonics=(1.0,), attack_s: float = 0.02) -> None:
    """Add one note to ``out`` in place: harmonics under an attack / exponential-decay envelope.

    Only the note's own samples are computed; the arpeggio has ~100 notes per file.
    """
    import numpy as np

    first = int(start * sample_rate)
    last = min(len(out), int((start + length) * sample_rate))
    if last <= first:
        return
    local = np.arange(last - first) / sample_rate  # seconds since the note began
    envelope = np.minimum(local / attack_s, 1.0) * np.exp(-3.0 * local / length)
    tone = sum(weight * np.sin(2 * np.pi * frequency * (k + 1) * local)
               for k, weight in enumerate(harmonics) if weight)
    out[first:last] += envelope * tone


def _fade(samples, sample_rate: int, fade_s: float = 0.05):
    """Short fade in and out so the file starts and ends without a click."""
    import numpy as np

    n = min(int(fade_s * sample_rate), len(samples) // 2)
    ramp = np.linspace(0.0, 1.0, n)
    samples = samples.copy()
    samples[:n] *= ramp
    samples[-n:] *= ramp[::-1]
    return samples


def _wav_bytes(pcm, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()
