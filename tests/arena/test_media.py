"""Upload validation against real files of every accepted format and the usual bad ones.

No ffmpeg or sox here, so the compressed audio samples are built by the small writers
below, byte for byte by their specifications: FLAC with verbatim subframes and real
CRC-8/CRC-16/MD5, Ogg pages with real CRC-32, an Ogg Opus stream of (legal) zero-length
frames, an Ogg Vorbis stream with a minimal but complete setup header whose audio packets
mark the channel unused (silence), and MPEG-1 Layer III frames with zeroed side information
(silence). PNG, JPEG, WebP and WAV come from Pillow and the wave module.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
import wave
import zipfile
import zlib

import pytest
from PIL import Image

from arena.outputs.media import MediaError, MediaInfo, validate_media

# --- images -------------------------------------------------------------------------------


def image_bytes(format: str, size=(40, 30), colour=(200, 40, 90), **options) -> bytes:
    image = Image.new("RGB", size, colour)
    image.putpixel((1, 1), (0, 255, 0))
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


# --- WAV ----------------------------------------------------------------------------------


def sine_samples(seconds: float, rate: int, frequency: float = 440.0) -> list[int]:
    return [round(12000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(int(seconds * rate))]


def wav_bytes(seconds: float = 1.0, rate: int = 8000, channels: int = 1) -> bytes:
    samples = sine_samples(seconds, rate)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"".join(struct.pack("<h", s) * channels for s in samples))
    return buffer.getvalue()


def float_wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """IEEE-float WAV (format tag 3), which the stdlib wave module cannot write or read."""
    samples = b"".join(struct.pack("<f", s / 32768) for s in sine_samples(seconds, rate))
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- FLAC ---------------------------------------------------------------------------------


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _flac_utf8(number: int) -> bytes:
    """FLAC's frame numbers use UTF-8's variable-length coding."""
    if number < 0x80:
        return bytes([number])
    return chr(number).encode("utf-8")  # valid for the frame counts used here


def flac_bytes(seconds: float = 1.5, rate: int = 8000, block: int = 4096) -> bytes:
    samples = sine_samples(seconds, rate)
    md5 = hashlib.md5(b"".join(struct.pack("<h", s) for s in samples)).digest()
    # STREAMINFO: block sizes, frame sizes unknown (0), rate, 1 channel, 16 bits, total samples.
    bits = (rate << 44) | (0 << 41) | (15 << 36) | len(samples)
    streaminfo = struct.pack(">HH", block, block) + b"\x00" * 6 + bits.to_bytes(8, "big") + md5
    out = b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo  # last block
    for number, start in enumerate(range(0, len(samples), block)):
        chunk = samples[start:start + block]
        # sync + fixed blocksize; blocksize from 16-bit field (0111), rate 8 kHz (0100);
        # mono (0000), 16 bits per sample (100), reserved 0.
        header = b"\xff\xf8" + bytes([0x74, 0x08]) + _flac_utf8(number) + struct.pack(">H", len(chunk) - 1)
        header += bytes([_crc8(header)])
        subframe = b"\x02" + b"".join(struct.pack(">h", s) for s in chunk)  # VERBATIM, no wasted bits
        frame = header + subframe
        out += frame + struct.pack(">H", _crc16(frame))
    return out


# --- Ogg ----------------------------------------------------------------------------------

_OGG_CRC_TABLE = []
for _i in range(256):
    _r = _i << 24
    for _ in range(8):
        _r = ((_r << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if _r & 0x80000000 else (_r << 1) & 0xFFFFFFFF
    _OGG_CRC_TABLE.append(_r)


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def ogg_page(packets: list[bytes], granule: int, sequence: int, flags: int = 0, serial: int = 0x1D0E7) -> bytes:
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, serial, sequence, 0, len(lacing)) + lacing
    page = header + b"".join(packets)
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def opus_bytes(seconds: float = 2.0) -> bytes:
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 8000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"duet" + struct.pack("<I", 0)
    # TOC 0xF8: CELT-only fullband 20 ms, code 0, i.e. one frame of zero bytes, which a
    # decoder treats as a lost frame and conceals (silence here). 960 samples at 48 kHz.
    packets = int(seconds / 0.02)
    pages = [ogg_page([head], 0, 0, flags=0x02), ogg_page([tags], 0, 1)]
    for page_index, first in enumerate(range(0, packets, 50)):
        count = min(50, packets - first)
        last = first + count == packets
        pages.append(ogg_page([b"\xf8"] * count, (first + count) * 960, 2 + page_index, flags=0x04 if last else 0))
    return b"".join(pages)


class _Bits:
    """Vorbis packs bit fields least-significant bit first."""

    def __init__(self):
        self.value, self.length = 0, 0

    def put(self, value: int, bits: int) -> _Bits:
        self.value |= value << self.length
        self.length += bits
        return self

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.length + 7) // 8, "little")


def vorbis_bytes(seconds: float = 2.0, rate: int = 8000) -> bytes:
    identification = b"\x01vorbis" + struct.pack("<IBIiiiBB", 0, 1, rate, 0, 0, 0, 0xB8, 1)  # blocks 256/2048
    comment = b"\x03vorbis" + struct.pack("<I", 4) + b"duet" + struct.pack("<I", 0) + b"\x01"
    setup = _Bits()
    setup.put(0, 8)  # one codebook:
    setup.put(0x564342, 24).put(1, 16).put(2, 24).put(0, 1).put(0, 1).put(0, 5).put(0, 5).put(0, 4)
    setup.put(0, 6).put(0, 16)  # one (placeholder) time-domain transform
    setup.put(0, 6).put(1, 16).put(0, 5).put(0, 2).put(7, 4)  # one floor 1, no partitions
    setup.put(0, 6).put(0, 16).put(0, 24).put(0, 24).put(0, 24).put(0, 6).put(0, 8).put(0, 3).put(0, 1)  # residue 0
    setup.put(0, 6).put(0, 16).put(0, 1).put(0, 1).put(0, 2).put(0, 8).put(0, 8).put(0, 8)  # one mapping
    setup.put(0, 6).put(0, 1).put(0, 16).put(0, 16).put(0, 8)  # one mode: short blocks
    setup.put(1, 1)  # framing bit
    # An audio packet of one zero byte: audio, mode 0, floor "unused": a block of silence.
    # Each short block after the first adds 128 samples.
    packets = int(seconds * rate / 128) + 1
    pages = [ogg_page([identification], 0, 0, flags=0x02),
             ogg_page([comment, b"\x05vorbis" + setup.bytes()], 0, 1)]
    for page_index, first in enumerate(range(0, packets, 40)):
        count = min(40, packets - first)
        last = first + count == packets
        pages.append(ogg_page([b"\x00"] * count, (first + count - 1) * 128, 2 + page_index, flags=0x04 if last else 0))
    return b"".join(pages)


# --- MP3 ----------------------------------------------------------------------------------


def mp3_bytes(frames: int = 40, id3: bool = True) -> bytes:
    # MPEG-1 Layer III, 128 kb/s, 44.1 kHz, mono, no padding: 417-byte frames. Zeroed side
    # information means no Huffman data and zero gain: a decoder outputs silence.
    frame = b"\xff\xfb\x90\xc4" + b"\x00" * (417 - 4)
    tag = b""
    if id3:
        body = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00" + b"\x00tone"  # one text frame
        tag = b"ID3\x04\x00\x00" + bytes([0, 0, len(body) >> 7, len(body) & 0x7F]) + body
    return tag + frame * frames


# --- accepted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "kind", "media_type", "extension", "expected"),
    [
        (image_bytes("PNG"), "a.png", "image", "image/png", "png", {"width": 40, "height": 30}),
        (image_bytes("JPEG", quality=90), "a.jpg", "image", "image/jpeg", "jpg", {"width": 40, "height": 30}),
        (image_bytes("JPEG"), "A.JPEG", "image", "image/jpeg", "jpg", {"width": 40}),
        (image_bytes("WEBP", size=(64, 48)), "a.webp", "image", "image/webp", "webp", {"width": 64, "height": 48}),
        (image_bytes("WEBP", lossless=True), "", "image", "image/webp", "webp", {"height": 30}),
        (wav_bytes(1.0, 8000), "a.wav", "audio", "audio/wav", "wav",
         {"duration": 1.0, "sample_rate": 8000, "channels": 1, "codec": "pcm"}),
        (wav_bytes(0.5, 16000, channels=2), "b.wav", "audio", "audio/wav", "wav",
         {"duration": 0.5, "sample_rate": 16000, "channels": 2}),
        (float_wav_bytes(1.0), "f.wav", "audio", "audio/wav", "wav", {"duration": 1.0, "codec": "float"}),
        (flac_bytes(1.5), "a.flac", "audio", "audio/flac", "flac", {"duration": 1.5, "sample_rate": 8000}),
        (opus_bytes(2.0), "a.opus", "audio", "audio/ogg", "opus", {"duration": round((96000 - 312) / 48000, 3)}),
        (opus_bytes(2.0), "a.ogg", "audio", "audio/ogg", "opus", {"channels": 1}),
        (vorbis_bytes(2.0), "a.ogg", "audio", "audio/ogg", "ogg", {"duration": 2.0, "sample_rate": 8000}),
        (mp3_bytes(40), "a.mp3", "audio", "audio/mpeg", "mp3", {"sample_rate": 44100, "channels": 1}),
        (mp3_bytes(40, id3=False), "b.mp3", "audio", "audio/mpeg", "mp3", {"codec": "mp3"}),
    ],
    ids=["png", "jpeg", "jpeg-upper-ext", "webp", "webp-lossless-noname", "wav", "wav-stereo", "wav-float",
         "flac", "opus", "opus-as-ogg", "vorbis", "mp3-id3", "mp3-bare"],
)
def test_accepts_real_files(data, filename, kind, media_type, extension, expected):
    info = validate_media(data, filename)

    assert isinstance(info, MediaInfo)
    assert (info.kind, info.media_type, info.extension) == (kind, media_type, extension)
    for key, value in expected.items():
        assert info.metadata[key] == value, key
    if kind == "audio":
        assert info.metadata["duration"] > 0


def test_mp3_duration_is_its_frame_count():
    info = validate_media(mp3_bytes(40), "a.mp3")

    assert info.metadata["duration"] == pytest.approx(40 * 1152 / 44100, abs=0.03)


def test_format_comes_from_content_not_from_the_declared_name():
    # A WAV named .wav is fine; the same bytes under no name are still a WAV.
    assert validate_media(wav_bytes(), "").extension == "wav"
    assert validate_media(image_bytes("PNG"), "upload").extension == "png"


# --- refused ------------------------------------------------------------------------------


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    return data[: int(len(data) * keep)]


def png_with_trailer(trailer: bytes) -> bytes:
    return image_bytes("PNG") + trailer


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def png_zip_polyglot() -> bytes:
    """A PNG with a ZIP archive inside an ancillary chunk: a valid PNG and a valid ZIP.

    ZIP readers locate the archive from its end record and allow data in front of it (as
    self-extracting archives have), so no offsets need patching.
    """
    png = image_bytes("PNG")
    iend = png.rindex(b"IEND") - 4  # start of the IEND chunk (its length field)
    chunk_data = zip_bytes()
    # A private ancillary chunk (lower-case first letter): decoders skip it.
    crc = zlib.crc32(b"prVt" + chunk_data)
    chunk = struct.pack(">I", len(chunk_data)) + b"prVt" + chunk_data + struct.pack(">I", crc)
    return png[:iend] + chunk + png[iend:]


def decompression_bomb_png() -> bytes:
    # 10000 x 10000 black pixels compress to ~100 kB but would decode to 300 MB.
    buffer = io.BytesIO()
    Image.new("1", (10000, 10000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "a.png", "a.png is empty"),
        (image_bytes("GIF"), "a.gif", "a.gif is a GIF image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg", "SVG"),
        (b'<?xml version="1.0"?>\n<svg/>', "x.png", "SVG"),
        (b"just some text", "notes.txt", "not in a recognised format"),
        (zip_bytes(), "a.zip", "a ZIP archive"),
        (image_bytes("BMP"), "a.bmp", "a BMP image"),
        (b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 64, "a.m4a", "MP4/M4A"),
        (wav_bytes(), "file.png", "file.png is actually a WAV file; rename it to .wav"),
        (image_bytes("PNG"), "photo.jpg", "photo.jpg is actually a PNG file"),
        (image_bytes("JPEG"), "photo.webp", "is actually a JPEG file"),
        (mp3_bytes(), "song.wav", "song.wav is actually an MP3 file"),
        (flac_bytes(), "song.ogg", "is actually a FLAC file"),
        (vorbis_bytes(), "song.opus", "is actually an Ogg Vorbis file"),
        (image_bytes("PNG"), "image.png.exe", "is actually a PNG file"),
        (truncated(image_bytes("PNG", size=(300, 200))), "t.png", "truncated PNG"),
        (truncated(image_bytes("JPEG", size=(300, 200))), "t.jpg", "corrupt or truncated JPEG image"),
        (truncated(image_bytes("WEBP", size=(300, 200))), "t.webp", "corrupt or truncated WebP image"),
        (png_with_trailer(b"<?php system($_GET['c']); ?>"), "t.png", "bytes of data after the end of the PNG"),
        (truncated(wav_bytes(), 0.5), "t.wav", "truncated WAV"),
        (flac_bytes()[:4 + 4 + 34], "t.flac", "FLAC file with no audio frames"),
        (flac_bytes()[:30], "t.flac", "corrupt FLAC file"),
        (mp3_bytes(1, id3=False)[:300], "t.mp3", "truncated MP3"),
        (mp3_bytes(3, id3=False)[:417] + b"\x00" * 500, "t.mp3", "frame 2 does not follow frame 1"),
        (wav_bytes(0.0), "silent.wav", "no duration"),
        (png_zip_polyglot(), "poly.png", "both a PNG file and a ZIP archive"),
    ],
    ids=["empty", "gif", "svg", "svg-as-png", "text", "zip", "bmp", "m4a", "wav-named-png", "png-named-jpg",
         "jpeg-named-webp", "mp3-named-wav", "flac-named-ogg", "vorbis-named-opus", "double-extension",
         "truncated-png", "truncated-jpeg", "truncated-webp", "png-trailer", "truncated-wav", "flac-no-frames",
         "truncated-flac",
         "truncated-mp3", "broken-mp3-chain", "empty-wav", "png-zip-polyglot"],
)
def test_refuses_bad_uploads_with_a_message_naming_the_problem(data, filename, message):
    with pytest.raises(MediaError, match=re.escape(message)):
        validate_media(data, filename)


def test_too_large_names_the_limit():
    data = image_bytes("PNG")

    with pytest.raises(MediaError, match=f"is {len(data):,} bytes; the limit is 100 bytes"):
        validate_media(data, "big.png", max_bytes=100)


def test_pixel_budget_is_checked_before_decoding():
    with pytest.raises(MediaError, match="10000x10000 pixels; the limit is 40,000,000 pixels"):
        validate_media(decompression_bomb_png(), "bomb.png")


def test_media_error_is_a_value_error():
    with pytest.raises(ValueError):
        validate_media(b"nope", "x")


def test_polyglot_fixture_really_is_both():
    # given the crafted polyglot
    data = png_zip_polyglot()
    # then Pillow decodes it and zipfile lists its payload: the refusal above is not vacuous
    Image.open(io.BytesIO(data)).load()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("payload.html").startswith(b"<script>")


def test_crafted_flac_frames_carry_valid_checksums():
    data = flac_bytes(1.0)
    frame_start = 4 + 4 + 34
    header = data[frame_start:frame_start + 7]

    assert _crc8(header) == data[frame_start + 7]
    assert validate_media(data, "x.flac").metadata["bits_per_sample"] == 16


def test_default_limit_comes_from_settings():
    from django.conf import settings
    from django.test import override_settings

    if not settings.configured:
        pytest.skip("Django settings are not configured in this run")
    with override_settings(MAX_UPLOAD_BYTES=50), pytest.raises(MediaError, match="the limit is 50 bytes"):
        validate_media(image_bytes("PNG"), "a.png")
