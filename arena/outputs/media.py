"""Validation of uploaded media: every file is identified by its content and decoded for real.

The format comes from the bytes, never from the file name or a declared MIME type; the
name's extension must then agree with it, so ``cat.png`` holding a WAV file is refused
rather than served with the wrong type. Images are decoded with Pillow under a pixel
budget; audio headers are parsed with mutagen, and the parts mutagen does not look at
(WAV data length, the first FLAC frame, the MP3 frame chain) are checked here.
Accepted: PNG, JPEG, WebP images; WAV (PCM or float), MP3, Ogg Vorbis, Ogg Opus, FLAC audio.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath

# 40 megapixels: beyond any picture worth judging side by side, and a decoded RGBA copy
# of it is already 160 MB of worker memory.
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class _Format:
    kind: str  # "image" | "audio"
    label: str  # for messages: "PNG image"
    short: str  # "PNG", for "a PNG file"
    media_type: str
    extension: str  # the one Duet stores the file under
    extensions: frozenset[str]  # every extension a name may have for this content


_FORMATS = {
    "png": _Format("image", "PNG image", "PNG", "image/png", "png", frozenset({"png"})),
    "jpeg": _Format("image", "JPEG image", "JPEG", "image/jpeg", "jpg", frozenset({"jpg", "jpeg", "jpe", "jfif"})),
    "webp": _Format("image", "WebP image", "WebP", "image/webp", "webp", frozenset({"webp"})),
    "wav": _Format("audio", "WAV audio", "WAV", "audio/wav", "wav", frozenset({"wav", "wave"})),
    "mp3": _Format("audio", "MP3 audio", "MP3", "audio/mpeg", "mp3", frozenset({"mp3"})),
    "vorbis": _Format("audio", "Ogg Vorbis audio", "Ogg Vorbis", "audio/ogg", "ogg", frozenset({"ogg", "oga"})),
    "opus": _Format("audio", "Ogg Opus audio", "Ogg Opus", "audio/ogg", "opus", frozenset({"opus", "ogg", "oga"})),
    "flac": _Format("audio", "FLAC audio", "FLAC", "audio/flac", "flac", frozenset({"flac"})),
}
_PILLOW_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}

# Recognised but refused, so the message can say what the file is.
_REFUSED_SIGNATURES = (
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"%PDF", "a PDF document"),
    (0, b"BM", "a BMP image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (4, b"ftyp", "an MP4/M4A/HEIC container"),
    (0, b"\x1aE\xdf\xa3", "a WebM/Matroska container"),
    (0, b"\x00\x00\x01\x00", "an ICO image"),
)
_ACCEPTED = "PNG, JPEG or WebP images; WAV, MP3, Ogg Vorbis/Opus or FLAC audio"


class MediaError(ValueError):
    """An upload is not acceptable media; the message names the problem for the uploader."""


@dataclass
class MediaInfo:
    kind: str  # "image" | "audio"
    media_type: str  # MIME type decided from the content
    extension: str  # the extension to store the file under, without the dot
    metadata: dict = field(default_factory=dict)  # width/height, or duration/sample_rate/channels


def validate_media(data: bytes, filename: str = "", max_bytes: int | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> MediaInfo:
    """Identify ``data`` from its content, decode it, and describe it; MediaError if unacceptable.

    ``filename`` is only checked for agreement: its extension, when it has one, must be
    one of the detected format's. ``max_bytes`` defaults to ``settings.MAX_UPLOAD_BYTES``.
    """
    name = PurePath(filename).name if filename else "the file"
    limit = max_bytes if max_bytes is not None else _default_max_bytes()
    if not data:
        raise MediaError(f"{name} is empty")
    if len(data) > limit:
        raise MediaError(f"{name} is {len(data):,} bytes; the limit is {limit:,} bytes")

    key = sniff(data)
    if key is None:
        raise MediaError(f"{name} is {_refused_kind(data)}; accepted: {_ACCEPTED}")
    fmt = _FORMATS[key]
    _check_extension(name, filename, fmt)
    if _is_zip(data):
        raise MediaError(f"{name} is both {_a(fmt.short)} file and a ZIP archive; such polyglot files are refused")

    if fmt.kind == "image":
        metadata = _decode_image(data, key, name, max_pixels)
    else:
        metadata = _AUDIO_DECODERS[key](data, name)
        duration = metadata.get("duration", 0.0)
        if not (duration > 0 and math.isfinite(duration)):
            raise MediaError(f"{name}: {fmt.label} with no duration (no audio in it)")
        metadata["duration"] = round(duration, 3)
    return MediaInfo(kind=fmt.kind, media_type=fmt.media_type, extension=fmt.extension, metadata=metadata)


def _default_max_bytes() -> int:
    from django.conf import settings

    return getattr(settings, "MAX_UPLOAD_BYTES", DEFAULT_MAX_BYTES) if settings.configured else DEFAULT_MAX_BYTES


# --- identification -----------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The accepted format ``data`` starts like (a key of _FORMATS), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"fLaC"):
        return "flac"
    if data.startswith(b"OggS"):
        first_packet = data[27 + data[26]:] if len(data) > 27 else b""  # after the segment table
        if first_packet.startswith(b"\x01vorbis"):
            return "vorbis"
        if first_packet.startswith(b"OpusHead"):
            return "opus"
        return None
    start = _id3v2_size(data)
    if start and data[start:start + 4] == b"fLaC":
        return "flac"  # FLAC behind an ID3 tag: mutagen reads it, browsers play it
    if _mp3_header(data, start) is not None:
        return "mp3"
    return None


def _refused_kind(data: bytes) -> str:
    for offset, signature, kind in _REFUSED_SIGNATURES:
        if data[offset:offset + len(signature)] == signature:
            return kind
    if data.startswith(b"OggS"):
        return "an Ogg file with a codec other than Vorbis or Opus"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        return "an SVG or XML document"
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML document"
    return "not in a recognised format"


def _check_extension(name: str, filename: str, fmt: _Format) -> None:
    suffix = PurePath(filename).suffix.lower().lstrip(".") if filename else ""
    if suffix and suffix not in fmt.extensions:
        raise MediaError(f"{name} is actually {_a(fmt.short)} file; rename it to .{fmt.extension}")


def _a(short: str) -> str:
    """The article as the name is read aloud: "an MP3", "an Ogg Opus", "a FLAC"."""
    return f"{'an' if short.startswith(('MP3', 'Ogg')) else 'a'} {short}"


def _is_zip(data: bytes) -> bool:
    """True when ``data`` is also a readable ZIP archive (a ZIP appended to media, say).

    An end-of-archive record alone could occur by chance in compressed audio, so a member's
    local header must also be where the central directory says it is.
    """
    stream = io.BytesIO(data)
    if not zipfile.is_zipfile(stream):
        return False
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
            return any(data[m.header_offset:m.header_offset + 4] == b"PK\x03\x04" for m in members)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


# --- images -------------------------------------------------------------------------------


def _decode_image(data: bytes, key: str, name: str, max_pixels: int) -> dict:
    from PIL import Image

    label = _FORMATS[key].label
    pillow_format = [_PILLOW_FORMATS[key]]
    if key == "png":
        _check_png_end(data, name)
    with warnings.catch_warnings():
        # Our pixel budget below is stricter than Pillow's warning threshold and says more.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=pillow_format) as image:
                width, height = image.size
                frames = getattr(image, "n_frames", 1)
                if width <= 0 or height <= 0:
                    raise MediaError(f"{name}: {label} with no pixels")
                # Checked from the header, before anything is decoded: a bomb never expands.
                if width * height * frames > max_pixels:
                    raise MediaError(f"{name} is {width}x{height} pixels{f' x {frames} frames' if frames > 1 else ''}; "
                                     f"the limit is {max_pixels:,} pixels")
                image.verify()  # checksums and structure, without decoding pixels
            with Image.open(io.BytesIO(data), formats=pillow_format) as image:
                for index in range(frames):  # decode every frame: a broken frame 2 is still broken
                    image.seek(index)
                    image.load()
                mode = image.mode
        except MediaError:
            raise
        except Image.DecompressionBombError as error:
            raise MediaError(f"{name} is too large to decode: {error}") from error
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError) as error:
            raise MediaError(f"{name} is a corrupt or truncated {label}: {error}") from error
    metadata = {"width": width, "height": height, "mode": mode}
    if frames > 1:
        metadata["frames"] = frames
    return metadata


def _check_png_end(data: bytes, name: str) -> None:
    """Walk the PNG chunks: the file must end exactly with IEND (no payload hidden after it)."""
    offset = 8
    while offset + 8 <= len(data):
        length, chunk_type = struct.unpack(">I4s", data[offset:offset + 8])
        offset += 12 + length
        if chunk_type == b"IEND":
            if offset < len(data):
                raise MediaError(f"{name} has {len(data) - offset:,} bytes of data after the end of the PNG image")
            return
    raise MediaError(f"{name} is a truncated PNG image (no IEND chunk)")


# --- audio --------------------------------------------------------------------------------


def _mutagen_info(parser, data: bytes, name: str, label: str):
    import mutagen

    try:
        return parser(io.BytesIO(data)).info
    except (mutagen.MutagenError, OSError, ValueError, EOFError, struct.error, IndexError) as error:
        raise MediaError(f"{name} is a corrupt {label}: {error}") from error


def _decode_wav(data: bytes, name: str) -> dict:
    from mutagen.wave import WAVE

    info = _mutagen_info(WAVE, data, name, "WAV file")
    format_tag, data_size = _wav_layout(data, name)
    if format_tag == 1:  # integer PCM: the standard library reads it, so read every frame
        try:
            with wave.open(io.BytesIO(data)) as reader:
                frames = reader.getnframes()
                frame_bytes = reader.getsampwidth() * reader.getnchannels()
                if len(reader.readframes(frames)) < frames * frame_bytes:
                    raise MediaError(f"{name} is a truncated WAV file: fewer samples than its header declares")
                duration = frames / reader.getframerate()
                sample_rate, channels = reader.getframerate(), reader.getnchannels()
        except (wave.Error, EOFError, struct.error, ZeroDivisionError) as error:
            raise MediaError(f"{name} is a corrupt WAV file: {error}") from error
    else:  # IEEE float, which browsers play and the stdlib wave module cannot read
        sample_rate, channels = info.sample_rate, info.channels
        bytes_per_second = sample_rate * channels * max(1, info.bits_per_sample // 8)
        duration = data_size / bytes_per_second if bytes_per_second else 0.0
    return {"duration": duration, "sample_rate": sample_rate, "channels": channels,
            "codec": "pcm" if format_tag == 1 else "float", "bits_per_sample": info.bits_per_sample}


def _wav_layout(data: bytes, name: str) -> tuple[int, int]:
    """Walk the RIFF chunks: the sample encoding (1 PCM, 3 float) and the data chunk's size, fully present."""
    format_tag, data_size, offset = None, None, 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack("<4sI", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + size]
        if chunk_id == b"fmt " and len(body) >= 16:
            format_tag = struct.unpack("<H", body[:2])[0]
            if format_tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag leads the GUID
                format_tag = struct.unpack("<H", body[24:26])[0]
        elif chunk_id == b"data":
            if len(body) < size:
                raise MediaError(f"{name} is a truncated WAV file: {len(body):,} of {size:,} bytes of samples")
            data_size = size
            break
        offset += 8 + size + (size & 1)  # chunks are padded to even lengths
    if format_tag is None or data_size is None:
        raise MediaError(f"{name} is a corrupt WAV file: no {'fmt' if format_tag is None else 'data'} chunk")
    if format_tag not in (1, 3):
        raise MediaError(f"{name} is WAV with encoding {format_tag:#06x}; only PCM or float WAV is accepted")
    return format_tag, data_size


def _decode_flac(data: bytes, name: str) -> dict:
    from mutagen.flac import FLAC

    info = _mutagen_info(FLAC, data, name, "FLAC file")
    audio_offset = _flac_audio_offset(data, name)
    # Every FLAC frame starts with the 14-bit sync code 0b11111111111110.
    if data[audio_offset:audio_offset + 2] not in (b"\xff\xf8", b"\xff\xf9"):
        raise MediaError(f"{name} is a FLAC file with no audio frames after its header")
    return {"duration": info.length, "sample_rate": info.sample_rate, "channels": info.channels,
            "codec": "flac", "bits_per_sample": info.bits_per_sample}


def _flac_audio_offset(data: bytes, name: str) -> int:
    offset = _id3v2_size(data) + 4  # after "fLaC"
    while offset + 4 <= len(data):
        header = data[offset]
        length = int.from_bytes(data[offset + 1:offset + 4], "big")
        offset += 4 + length
        if header & 0x80:  # last metadata block
            return offset
    raise MediaError(f"{name} is a truncated FLAC file (its metadata never ends)")


def _decode_vorbis(data: bytes, name: str) -> dict:
    from mutagen.oggvorbis import OggVorbis

    info = _mutagen_info(OggVorbis, data, name, "Ogg Vorbis file")
    return {"duration": info.length, "sample_rate": info.sample_rate, "channels": info.channels, "codec": "vorbis"}


def _decode_opus(data: bytes, name: str) -> dict:
    from mutagen.oggopus import OggOpus

    info = _mutagen_info(OggOpus, data, name, "Ogg Opus file")
    # Opus always decodes at 48 kHz, whatever rate the encoder was fed.
    return {"duration": info.length, "sample_rate": 48000, "channels": info.channels, "codec": "opus"}


def _decode_mp3(data: bytes, name: str) -> dict:
    from mutagen.mp3 import MP3

    start = _id3v2_size(data)
    _check_mp3_frames(data, start, name)
    info = _mutagen_info(MP3, data, name, "MP3 file")
    return {"duration": info.length, "sample_rate": info.sample_rate, "channels": info.channels,
            "codec": "mp3", "bitrate": info.bitrate}


_AUDIO_DECODERS = {
    "wav": _decode_wav,
    "flac": _decode_flac,
    "mp3": _decode_mp3,
    "vorbis": _decode_vorbis,
    "opus": _decode_opus,
}


# --- MP3 frames ---------------------------------------------------------------------------

_MP3_BITRATES_KBPS = {  # Layer III only; index 0 ("free") and 15 are not playable here
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),
}
_MP3_SAMPLE_RATES = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_MP3_FRAMES_TO_CHAIN = 3


def _id3v2_size(data: bytes) -> int:
    """Bytes taken by a leading ID3v2 tag (0 if none)."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:  # "syncsafe": 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _mp3_header(data: bytes, offset: int) -> int | None:
    """Length in bytes of the MPEG Layer III frame whose header is at ``offset``, or None if none is there."""
    if offset + 4 > len(data) or data[offset] != 0xFF or data[offset + 1] & 0xE0 != 0xE0:
        return None
    version_bits = (data[offset + 1] >> 3) & 3  # 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
    layer_bits = (data[offset + 1] >> 1) & 3  # 1: Layer III
    bitrate_index, rate_index = data[offset + 2] >> 4, (data[offset + 2] >> 2) & 3
    padding = (data[offset + 2] >> 1) & 1
    if version_bits == 1 or layer_bits != 1 or rate_index == 3:
        return None
    version = {3: 1, 2: 2, 0: 25}[version_bits]
    bitrate = _MP3_BITRATES_KBPS[1 if version == 1 else 2][bitrate_index] * 1000
    if not bitrate:
        return None
    sample_rate = _MP3_SAMPLE_RATES[version][rate_index]
    return (144 if version == 1 else 72) * bitrate // sample_rate + padding


def _check_mp3_frames(data: bytes, start: int, name: str) -> None:
    """The first frames must follow each other back to back, as they do in any real MP3."""
    offset = start
    for number in range(1, _MP3_FRAMES_TO_CHAIN + 1):
        length = _mp3_header(data, offset)
        if length is None:
            raise MediaError(f"{name} is a corrupt MP3 file: frame {number} does not follow frame {number - 1}")
        offset += length
        if offset > len(data):
            raise MediaError(f"{name} is a truncated MP3 file: frame {number} is cut off")
        if offset == len(data):
            return  # a file of fewer frames than we chain, every one of them whole
