#!/usr/bin/python3
"""Writes the fixtures of lumen's file-format tests. Run from the repository root:

    /usr/bin/python3 tools/make_broken_corpus.py

tests/fixtures/images/NAME.png   small PNGs of every kind the reader handles (gray 1/4/8/16 bits,
                                 gray+alpha, RGB, RGBA, palettes, tRNS, Adam7 interlacing), written by
                                 hand with zlib and checked against PIL; NAME.npy holds the float32
                                 (C, H, W) tensor lumen must read from NAME.png.
tests/fixtures/npy/*             .npy files written by numpy (each dtype, versions 1-3, 0-d, empty),
                                 a safetensors file laid out as the reference writer does, gzip files.
tests/fixtures/broken/*          small broken files made from the valid ones (truncated, flipped bytes,
                                 bad magic, huge or overflowing shapes, lengths past the end, bad dtypes,
                                 bad JSON, overlapping offsets, damaged JPEG markers and scans, ...).
                                 Every reader must refuse every one with a message naming the file; the
                                 extension says which reader. The JPEGs are made from
                                 tests/fixtures/jpeg/{rgb420,progressive}.jpg (tools/make_image_fixtures.py).
                                 The hostile ones (images that decode to gigabytes, sizes whose product
                                 overflows strides) are listed in broken/expected.txt with a piece of the
                                 message they must give (the limit they exceed).

The values the tests expect of the npy and safetensors fixtures are written next to each file
below. The output is deterministic: running this again gives the same bytes.
"""
import gzip
import io
import json
import os
import struct
import zlib

import numpy as np

try:
    from PIL import Image
except ImportError:  # the PNGs are still written; only the cross-check is skipped
    Image = None

ROOT = os.path.join("tests", "fixtures")
IMAGES, NPY, BROKEN = (os.path.join(ROOT, d) for d in ("images", "npy", "broken"))


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- PNG, by hand

def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def pack_row(row, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in row)
    if depth == 8:
        return bytes(int(v) for v in row)
    per, out = 8 // depth, bytearray((len(row) * depth + 7) // 8)
    for i, v in enumerate(row):
        out[i // per] |= int(v) << (8 - depth * (i % per + 1))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def make_png(samples, ctype, depth, interlace=False, plte=None, trns=None):
    """samples: (H, W, channels in the file) integers (palette indices for ctype 3)."""
    h, w, _ = samples.shape
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue  # empty passes have no rows at all
        for row in sub:
            raw += b"\0" + pack_row(row.reshape(-1), depth)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(interlace)))
    if plte is not None:
        out += chunk(b"PLTE", bytes(int(v) for v in plte.reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def f32_div(v, d):
    return (np.asarray(v, np.float32) / np.float32(d)).astype(np.float32)


def png_fixture(name, ctype, depth, w, h, rng, interlace=False, trns=False, colors=0):
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    top = colors - 1 if ctype == 3 else (1 << depth) - 1
    s = rng.integers(0, top + 1, size=(h, w, channels))
    plte = trns_bytes = None
    if ctype == 3:
        plte = rng.integers(0, 256, size=(colors, 3))
        rgb = plte[s[..., 0]]
        if trns:
            alpha = rng.integers(0, 256, size=colors // 2)
            trns_bytes = bytes(int(a) for a in alpha)
            full = np.concatenate([alpha, np.full(colors - len(alpha), 255)])
            rgb = np.concatenate([rgb, full[s[..., 0]][..., None]], axis=2)
        expect = f32_div(rgb, 255)
    else:
        scale = 255 // top if depth < 8 else 1  # libpng widens 1, 2, 4-bit gray to 8 bits
        wide = s * scale
        full = 255 if depth <= 8 else 65535
        if trns:  # one colour (that of pixel (0, 0)) becomes transparent
            key = s[0, 0]
            trns_bytes = b"".join(struct.pack(">H", int(v)) for v in key)
            alpha = np.where(np.all(s == key, axis=2), 0, full)[..., None]
            wide = np.concatenate([wide, alpha], axis=2)
        expect = f32_div(wide, full)
    data = make_png(s, ctype, depth, interlace, plte, trns_bytes)
    write(os.path.join(IMAGES, name + ".png"), data)
    np.save(os.path.join(IMAGES, name + ".npy"), np.ascontiguousarray(expect.transpose(2, 0, 1)))
    if Image is not None:
        check_with_pil(name, data, expect, depth)
    return data


def check_with_pil(name, data, expect, depth):
    """PIL keeps 16-bit gray but cuts 16-bit colour to its high byte: compare at 8 bits there."""
    im = Image.open(io.BytesIO(data))
    if im.mode in ("I;16", "I;16B", "I"):
        got, tol = np.array(im).astype(np.float64)[..., None] / 65535, 1e-6
    else:
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[expect.shape[2]]
        got = np.array(im.convert(mode)).astype(np.float64).reshape(expect.shape) / 255
        tol = 1 / 255 + 1e-6 if depth == 16 else 1e-6
    if np.abs(got - expect).max() > tol:
        raise SystemExit(f"{name}: PIL disagrees with the expected pixels")


def make_images():
    rng = np.random.default_rng(7)
    base = {}
    base["gray8"] = png_fixture("gray8", 0, 8, 5, 3, rng)
    png_fixture("gray1", 0, 1, 11, 3, rng)
    png_fixture("gray4_interlaced", 0, 4, 9, 7, rng, interlace=True)
    png_fixture("gray8_trns", 0, 8, 4, 4, rng, trns=True)
    png_fixture("gray16", 0, 16, 4, 3, rng)
    png_fixture("gray_alpha8", 4, 8, 5, 4, rng)
    png_fixture("gray_alpha16", 4, 16, 3, 2, rng)
    base["rgb8"] = png_fixture("rgb8", 2, 8, 6, 4, rng)
    png_fixture("rgb8_trns", 2, 8, 4, 3, rng, trns=True)
    png_fixture("rgb16", 2, 16, 3, 3, rng)
    png_fixture("rgba8", 6, 8, 5, 3, rng)
    png_fixture("rgba16", 6, 16, 4, 3, rng)
    base["palette2"] = png_fixture("palette2", 3, 2, 7, 3, rng, colors=4)
    png_fixture("palette8_trns", 3, 8, 6, 5, rng, trns=True, colors=20)
    png_fixture("rgb8_interlaced", 2, 8, 11, 9, rng, interlace=True)
    png_fixture("rgba16_interlaced", 6, 16, 10, 10, rng, interlace=True)
    return base


# ---------------------------------------------------------------- npy, safetensors, gzip

def save_npy(name, a, version=None):
    path = os.path.join(NPY, name)
    if version is None:
        np.save(path, a)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, a, version=version)
    with open(path, "rb") as f:
        return f.read()


def npy_header(header, data, major=1):
    """A .npy file with a hand-written header (padded to 64 bytes as numpy does)."""
    h = header.encode("latin1")
    prefix = 10 if major == 1 else 12
    pad = 64 - (prefix + len(h) + 1) % 64
    h += b" " * pad + b"\n"
    size = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + size + h + data


def make_npy():
    # Expected values (the C and Lua tests check these):
    #   f4_2x3x4: float32 i * 0.25 - 3 for flat index i
    #   f8_3x5: float64 i / 3 (read as float32)          i4_4: int32 min, -1, 0, int32 max
    #   i8_2x3: -(2^62), -1, 0, 1, 2^40, 2^62             u1_8: 0 1 127 128 200 254 255 3 (2, 2, 2)
    #   b1_5: T F T T F                                    f4_scalar: 3.5 (0-d)
    #   f4_empty: shape (0, 3)                             f4_v2, f4_v3: 1 2 3 in format 2.0 / 3.0
    #   f4_py2_long: shape written (2L, 3L) by Python 2, values i
    base = save_npy("f4_2x3x4.npy", (np.arange(24, dtype=np.float32) * 0.25 - 3).reshape(2, 3, 4))
    save_npy("f8_3x5.npy", (np.arange(15) / 3.0).reshape(3, 5))
    save_npy("i4_4.npy", np.array([-2**31, -1, 0, 2**31 - 1], np.int32))
    save_npy("i8_2x3.npy", np.array([[-(2**62), -1, 0], [1, 2**40, 2**62]], np.int64))
    save_npy("u1_8.npy", np.array([0, 1, 127, 128, 200, 254, 255, 3], np.uint8).reshape(2, 2, 2))
    save_npy("b1_5.npy", np.array([True, False, True, True, False]))
    save_npy("f4_scalar.npy", np.array(3.5, np.float32))
    save_npy("f4_empty.npy", np.zeros((0, 3), np.float32))
    save_npy("f4_v2.npy", np.array([1, 2, 3], np.float32), version=(2, 0))
    save_npy("f4_v3.npy", np.array([1, 2, 3], np.float32), version=(3, 0))
    write(os.path.join(NPY, "f4_py2_long.npy"),
          npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
                     np.arange(6, dtype=np.float32).tobytes()))
    # The same array gzipped, as one member and as two concatenated members.
    write(os.path.join(NPY, "f4_2x3x4.npy.gz"), gzip.compress(base, mtime=0))
    write(os.path.join(NPY, "f4_2x3x4_two_members.npy.gz"),
          gzip.compress(base[:50], mtime=0) + gzip.compress(base[50:], mtime=0))
    return base


def safetensors(entries, metadata=None, pad=True):
    """entries: [(name, dtype, shape, bytes)] laid out in this order, as the reference writer does:
    compact JSON, __metadata__ first, header padded with spaces to a multiple of 8."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def bf16(values):
    return (np.array(values, np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()


def make_safetensors():
    # all_dtypes.safetensors, values checked by the tests:
    #   a F32 (2, 3): i * 0.5          b I64 (4,): -1, 0, 1, 2^40      c F16 (3,): 1, -2.5, 65504
    #   d BF16 (2,): 1, -0.15625        e F64 (2, 2): i / 4             f I32 (3,): -7, 0, 7
    #   g F32 (): 42                     h F32 (0, 4): empty
    #   metadata: format = "pt", note = 'quote " tab \t e-acute \u00e9'
    entries = [
        ("a", "F32", (2, 3), (np.arange(6, dtype="<f4") * 0.5).tobytes()),
        ("b", "I64", (4,), np.array([-1, 0, 1, 2**40], "<i8").tobytes()),
        ("c", "F16", (3,), np.array([1, -2.5, 65504], "<f2").tobytes()),
        ("d", "BF16", (2,), bf16([1, -0.15625])),
        ("e", "F64", (2, 2), (np.arange(4, dtype="<f8") / 4).tobytes()),
        ("f", "I32", (3,), np.array([-7, 0, 7], "<i4").tobytes()),
        ("g", "F32", (), np.array(42, "<f4").tobytes()),
        ("h", "F32", (0, 4), b""),
    ]
    write(os.path.join(NPY, "all_dtypes.safetensors"),
          safetensors(entries, {"format": "pt", "note": 'quote " tab \t e-acute \u00e9'}))
    # f32_sorted.safetensors: what lumen writes for {bias = (3,) 1 2 3, weight = (2, 3) i}
    # with metadata {format = "pt"}: names sorted, data in the same order.
    sorted_entries = [("bias", "F32", (3,), np.array([1, 2, 3], "<f4").tobytes()),
                      ("weight", "F32", (2, 3), np.arange(6, dtype="<f4").tobytes())]
    write(os.path.join(NPY, "f32_sorted.safetensors"), safetensors(sorted_entries, {"format": "pt"}))
    # empty.safetensors: no tensors at all (valid: the reader must not sort a NULL array).
    write(os.path.join(NPY, "empty.safetensors"), safetensors([]))
    return entries, sorted_entries


# ---------------------------------------------------------------- the broken corpus

def flip(data, i):
    b = bytearray(data)
    b[i] ^= 0xFF
    return bytes(b)


def png_with_ihdr(w, h, depth, ctype, interlace=0, idat=None):
    raw = zlib.compress(b"\0" * 8) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)) +
            chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def broken_png(rgb8, palette2):
    out = {}
    n = len(rgb8)
    for cut in sorted({0, 1, 7, 8, 12, 16, 20, 29, 33, 37, 41, 45, n // 2, n - 20, n - 12, n - 8, n - 1}):
        out[f"png_truncated_{cut:03d}.png"] = rgb8[:cut]
    idat = rgb8.index(b"IDAT")
    for i in (1, 12, 18, 24, 29, 30, idat - 2, idat, idat + 10, idat + 30, n - 9, n - 6, n - 2):
        out[f"png_flip_{i:03d}.png"] = flip(rgb8, i)
    out["png_bad_signature.png"] = b"\x89PNX" + rgb8[4:]
    out["png_jpeg_magic.png"] = b"\xff\xd8\xff\xe0" + rgb8[4:]
    out["png_ihdr_depth3.png"] = png_with_ihdr(2, 2, 3, 0)
    out["png_ihdr_colortype5.png"] = png_with_ihdr(2, 2, 8, 5)
    out["png_ihdr_rgb_depth4.png"] = png_with_ihdr(2, 2, 4, 2)
    out["png_ihdr_width0.png"] = png_with_ihdr(0, 2, 8, 0)
    out["png_ihdr_interlace2.png"] = png_with_ihdr(2, 2, 8, 0, interlace=2)
    out["png_huge_100000x100000.png"] = png_with_ihdr(100000, 100000, 8, 2)
    out["png_huge_16384x16384_rgba16.png"] = png_with_ihdr(16384, 16384, 16, 6)
    out["png_huge_width_2e31.png"] = png_with_ihdr(2**31 - 1, 1, 8, 0)
    out["png_idat_not_zlib.png"] = png_with_ihdr(2, 2, 8, 0, idat=b"this is not zlib data")
    out["png_idat_too_short.png"] = png_with_ihdr(4, 4, 8, 0, idat=zlib.compress(b"\0" * 10))
    out["png_bad_filter_type.png"] = png_with_ihdr(2, 2, 8, 0, idat=zlib.compress(b"\x09\0\0\x09\0\0"))
    sig_ihdr = rgb8[:33]
    out["png_no_idat.png"] = sig_ihdr + chunk(b"IEND", b"")
    out["png_no_iend.png"] = rgb8[:-12]
    out["png_idat_length_past_eof.png"] = sig_ihdr + struct.pack(">I", 0x7FFFFFF0) + rgb8[37:]
    out["png_chunk_length_2e31.png"] = sig_ihdr + struct.pack(">I", 0x80000000) + rgb8[37:]
    out["png_bad_chunk_type.png"] = sig_ihdr + chunk(b"ID@T", b"xx") + rgb8[33:]
    plte_at = palette2.index(b"PLTE") - 4
    plte_len = struct.unpack(">I", palette2[plte_at:plte_at + 4])[0]
    out["png_palette_missing_plte.png"] = palette2[:plte_at] + palette2[plte_at + 12 + plte_len:]
    out["png_palette_empty_plte.png"] = palette2[:plte_at] + chunk(b"PLTE", b"") + palette2[plte_at + 12 + plte_len:]
    out["png_empty.png"] = b""
    # Bombs just under the old cap of 2^28 samples: 268 MB of rows and 1.07 GB of floats before. The
    # IDAT holds only the first rows (the size is refused from IHDR, before any of it is needed).
    out["png_bomb_16384x16384.png"] = png_with_ihdr(16384, 16384, 8, 0, idat=zlib.compress(b"\0" * 16385 * 64, 9))
    out["png_bomb_268x1000000.png"] = png_with_ihdr(268, 1000000, 8, 0, idat=zlib.compress(b"\0" * 269 * 4096, 9))
    out["png_bomb_adam7_8000x8000_rgba16.png"] = png_with_ihdr(8000, 8000, 16, 6, interlace=1,
                                                              idat=zlib.compress(b"\0" * 4096, 9))
    return out


# Pieces of the message each hostile file must give (broken/expected.txt).
EXPECTED = {
    "png_bomb_16384x16384.png": "image of 16384 x 16384 = 268435456 pixels exceeds the image_pixels limit",
    "png_bomb_268x1000000.png": "image of 268 x 1000000 = 268000000 pixels exceeds the image_pixels limit",
    "png_bomb_adam7_8000x8000_rgba16.png": "exceeds the image_pixels limit",
    "npy_shape_zero_huge.npy": "tensor too large",
    "st_shape_zero_huge.safetensors": "tensor too large",
}


def broken_npy(base):
    out = {}
    n = len(base)
    data = base[128:]
    for cut in sorted({0, 1, 5, 6, 8, 9, 10, 11, 40, 127, 128, 129, n // 2 + 1, n - 1}):
        out[f"npy_truncated_{cut:03d}.npy"] = base[:cut]
    for i in (0, 3, 6, 7, 8, 9, 10, 12, 13, 17, 20, 22, 25, 30, 35, 50, 60, 62, 65):
        out[f"npy_flip_{i:03d}.npy"] = flip(base, i)
    f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
    out["npy_bad_magic.npy"] = b"\x93NUMPZ" + base[6:]
    out["npy_version_4.npy"] = b"\x93NUMPY\x04\x00" + base[8:]
    out["npy_version_1_1.npy"] = b"\x93NUMPY\x01\x01" + base[8:]
    out["npy_header_len_past_eof.npy"] = base[:8] + struct.pack("<H", 0xFFFF) + base[10:]
    out["npy_v2_header_len_4g.npy"] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFFF) + base[10:]
    out["npy_v2_header_len_odd.npy"] = b"\x93NUMPY\x02\x00" + base[8:]
    out["npy_not_a_dict.npy"] = npy_header("[1, 2, 3]", data)
    out["npy_missing_shape.npy"] = npy_header("{'descr': '<f4', 'fortran_order': False, }", data)
    out["npy_missing_descr.npy"] = npy_header("{'fortran_order': False, 'shape': (2, 3, 4), }", data)
    out["npy_extra_key.npy"] = npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), 'x': 1, }", data)
    out["npy_repeated_key.npy"] = npy_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (24,), }", data)
    out["npy_unclosed_dict.npy"] = npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), ", data)
    out["npy_text_after_dict.npy"] = npy_header(f4 % "(2, 3, 4)" + " junk", data)
    out["npy_unterminated_string.npy"] = npy_header("{'descr': '<f4, 'fortran_order': False, 'shape': (24,), }", data)
    for tag, descr in [("c8", "<c8"), ("big_endian", ">f4"), ("f2", "<f2"), ("word", "float32"), ("empty", ""),
                       ("object", "|O"), ("u2", "<u2"), ("struct", "[('a', '<f4')]")]:
        quoted = descr if descr.startswith("[") else repr(descr)
        out[f"npy_dtype_{tag}.npy"] = npy_header(
            "{'descr': %s, 'fortran_order': False, 'shape': (2, 3, 4), }" % quoted, data)
    out["npy_fortran_order.npy"] = npy_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }", data)
    out["npy_fortran_order_word.npy"] = npy_header("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3, 4), }", data)
    for tag, shape in [("negative", "(-1, 24)"), ("overflow_digits", "(99999999999999999999,)"),
                       ("overflow_product", "(4294967296, 4294967296, 4294967296)"),
                       ("huge", "(100000, 100000)"), ("not_tuple", "(24)"), ("list", "[2, 3, 4]"),
                       ("float", "(2.0, 12)"), ("double_comma", "(2,, 12)"), ("unclosed", "(2, 12"),
                       ("nine_dims", "(1, 1, 1, 1, 1, 1, 1, 1, 24)"), ("letters", "(two, 12)"),
                       ("too_small", "(2, 3)"), ("too_large", "(5, 5)"), ("zero_with_data", "(0, 24)")]:
        out[f"npy_shape_{tag}.npy"] = npy_header(f4 % shape, data)
    out["npy_trailing_bytes.npy"] = base + b"\0\0\0\0"
    out["npy_empty.npy"] = b""
    # numel 0 but the other sizes overflow int64 strides: no data needed, so it was accepted.
    out["npy_shape_zero_huge.npy"] = npy_header(f4 % "(0, 4611686018427387904, 4611686018427387904)", b"")
    return out


def broken_safetensors(entries):
    out = {}
    two = entries[:2]
    base = safetensors(two, {"format": "pt"})
    hlen = struct.unpack("<Q", base[:8])[0]
    n = len(base)
    for cut in sorted({0, 1, 4, 7, 8, 9, 20, 8 + hlen // 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 5, n - 1}):
        out[f"st_truncated_{cut:03d}.safetensors"] = base[:cut]
    for i in (0, 3, 7, 8, 9, 12, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100, 110):
        if i < 8 + hlen:
            out[f"st_flip_{i:03d}.safetensors"] = flip(base, i)
    body = base[8:]
    out["st_header_len_u64max.safetensors"] = struct.pack("<Q", 2**64 - 1) + body
    out["st_header_len_2e63.safetensors"] = struct.pack("<Q", 2**63) + body
    out["st_header_len_past_eof.safetensors"] = struct.pack("<Q", n - 7) + body
    out["st_header_len_zero.safetensors"] = struct.pack("<Q", 0) + body
    out["st_header_len_one.safetensors"] = struct.pack("<Q", 1) + body
    a32 = entries[0][3]

    def raw_header(text, data=a32):
        h = text.encode()
        return struct.pack("<Q", len(h)) + h + data

    ok_a = '"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}'
    cases = {
        "not_object": '["a"]',
        "not_json": "hello there",
        "trailing_comma": "{" + ok_a + ",}",
        "missing_colon": '{"a" {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "unterminated_string": '{"a:{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "bad_escape": '{"a\\x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "bad_unicode_escape": '{"a\\u12G4":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "lone_surrogate": '{"a\\ud800":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "nul_in_name": '{"a\\u0000b":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "control_char_in_name": '{"a\tb":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "junk_after_object": "{" + ok_a + "} x",
        "two_objects": "{" + ok_a + "}{}",
        "duplicate_name": "{" + ok_a + "," + ok_a + "}",
        "duplicate_field": '{"a":{"dtype":"F32","dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}',
        "unknown_field": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"x":1}}',
        "missing_offsets": '{"a":{"dtype":"F32","shape":[2,3]}}',
        "missing_dtype": '{"a":{"shape":[2,3],"data_offsets":[0,24]}}',
        "entry_not_object": '{"a":[1,2]}',
        "entry_empty": '{"a":{}}',
        "three_offsets": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24,48]}}',
        "one_offset": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24]}}',
        "offsets_reversed": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]}}',
        "offsets_past_end": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]}}',
        "offsets_negative": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[-8,16]}}',
        "offsets_huge": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[18446744073709551592,18446744073709551616]}}',
        "offsets_wrong_size": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}',
        "offsets_float": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24.0]}}',
        "offsets_leading_zero": '{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[00,24]}}',
        "shape_negative": '{"a":{"dtype":"F32","shape":[-2,-3],"data_offsets":[0,24]}}',
        "shape_float": '{"a":{"dtype":"F32","shape":[2.5,3],"data_offsets":[0,24]}}',
        "shape_exponent": '{"a":{"dtype":"F32","shape":[2e0,3],"data_offsets":[0,24]}}',
        "shape_string": '{"a":{"dtype":"F32","shape":"2,3","data_offsets":[0,24]}}',
        "shape_nine_dims": '{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,2,3],"data_offsets":[0,24]}}',
        "shape_overflow_product": '{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,24]}}',
        "shape_overflow_digits": '{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,24]}}',
        "shape_huge": '{"a":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,24]}}',
        "shape_zero_huge": '{"a":{"dtype":"F32","shape":[0,4611686018427387904,4611686018427387904],"data_offsets":[0,0]},'
                           '"b":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}',
        "shape_too_small": '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}}',
        "dtype_f8": '{"a":{"dtype":"F8","shape":[2,3],"data_offsets":[0,24]}}',
        "dtype_lowercase": '{"a":{"dtype":"f32","shape":[2,3],"data_offsets":[0,24]}}',
        "dtype_u8": '{"a":{"dtype":"U8","shape":[24],"data_offsets":[0,24]}}',
        "dtype_empty": '{"a":{"dtype":"","shape":[2,3],"data_offsets":[0,24]}}',
        "dtype_number": '{"a":{"dtype":32,"shape":[2,3],"data_offsets":[0,24]}}',
        "dtype_i32_size": '{"a":{"dtype":"I64","shape":[2,3],"data_offsets":[0,24]}}',
        "overlap": '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}',
        "hole": '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}',
        "data_after_tensors": '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',
        "metadata_number": '{"__metadata__":{"format":1},' + ok_a + "}",
        "metadata_list": '{"__metadata__":["pt"],' + ok_a + "}",
        "metadata_twice": '{"__metadata__":{},"__metadata__":{},' + ok_a + "}",
        "metadata_duplicate_key": '{"__metadata__":{"k":"a","k":"b"},' + ok_a + "}",
        "name_number": "{1:{}}",
    }
    for tag, text in cases.items():
        out[f"st_{tag}.safetensors"] = raw_header(text)
    out["st_empty.safetensors"] = b""
    return out


def broken_gz(payload):
    out = {}
    gz = gzip.compress(payload, mtime=0)
    n = len(gz)
    for cut in sorted({0, 1, 2, 9, 10, 11, n // 2, n - 8, n - 5, n - 1}):
        out[f"gz_truncated_{cut:03d}.gz"] = gz[:cut]
    for i in (12, 15, n // 2, n - 20, n - 8, n - 6, n - 3, n - 1):
        out[f"gz_flip_{i:03d}.gz"] = flip(gz, i)
    out["gz_bad_magic.gz"] = b"\x1f\x8c" + gz[2:]
    out["gz_not_gzip.gz"] = b"plain text, no gzip here\n"
    out["gz_bad_method.gz"] = gz[:2] + b"\x07" + gz[3:]
    out["gz_reserved_flags.gz"] = gz[:3] + b"\xe0" + gz[4:]
    out["gz_trailing_garbage.gz"] = gz + b"garbage"
    out["gz_second_member_truncated.gz"] = gz + gz[:15]
    return out


def jpeg_segments(data):
    """[(marker, payload)] from SOI up to the first SOS, and the rest (SOS payload + scan data + EOI)."""
    assert data[:2] == b"\xff\xd8"
    pos, segs = 2, []
    while True:
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xDA:
            return segs, data[pos:]
        segs.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length


def jpeg_join(segs, rest):
    return b"\xff\xd8" + b"".join(b"\xff" + bytes([m]) + struct.pack(">H", len(p) + 2) + p for m, p in segs) + rest


def with_segment(segs, marker, payload):
    return [(m, payload if m == marker else p) for m, p in segs]


def broken_jpeg(jpg, progressive):
    """tests/fixtures/jpeg/rgb420.jpg (baseline) and progressive.jpg (from tools/make_image_fixtures.py), damaged."""
    out = {}
    n = len(jpg)
    segs, rest = jpeg_segments(jpg)
    sos = n - len(rest)
    for cut in sorted({0, 2, 3, 4, 20, 100, sos - 1, sos + 5, sos + 20, (sos + n) // 2, n - 10, n - 2, n - 1}):
        out[f"jpeg_truncated_{cut:03d}.jpg"] = jpg[:cut]
    out["jpeg_bad_signature.jpg"] = b"\xff\xd9\xff" + jpg[3:]
    out["jpeg_png_magic.jpg"] = b"\x89PNG\r\n\x1a\n" + jpg[8:]
    sof = dict(segs)[0xC0]
    p, h, w, nc = struct.unpack(">BHHB", sof[:6])
    out["jpeg_huge_65500x65500.jpg"] = jpeg_join(with_segment(segs, 0xC0, struct.pack(">BHHB", p, 65500, 65500, nc) + sof[6:]), rest)
    out["jpeg_huge_60000x1000.jpg"] = jpeg_join(with_segment(segs, 0xC0, struct.pack(">BHHB", p, 1000, 60000, nc) + sof[6:]), rest)
    out["jpeg_width0.jpg"] = jpeg_join(with_segment(segs, 0xC0, struct.pack(">BHHB", p, h, 0, nc) + sof[6:]), rest)
    out["jpeg_precision12.jpg"] = jpeg_join(with_segment(segs, 0xC0, struct.pack(">BHHB", 12, h, w, nc) + sof[6:]), rest)
    out["jpeg_two_components.jpg"] = jpeg_join(with_segment(segs, 0xC0, struct.pack(">BHHB", p, h, w, 2) + sof[6:12]), rest)
    out["jpeg_sampling_0.jpg"] = jpeg_join(with_segment(segs, 0xC0, sof[:7] + b"\x00" + sof[8:]), rest)
    out["jpeg_no_sof.jpg"] = jpeg_join([s for s in segs if s[0] != 0xC0], rest)
    out["jpeg_no_dqt.jpg"] = jpeg_join([s for s in segs if s[0] != 0xDB], rest)
    dht = dict(segs)[0xC4]
    out["jpeg_dht_counts_too_big.jpg"] = jpeg_join(with_segment(segs, 0xC4, dht[:1] + b"\xff" * 16 + dht[17:]), rest)
    out["jpeg_segment_past_eof.jpg"] = jpg[:2] + b"\xff\xe0\xff\xf0" + jpg[6:]
    out["jpeg_sos_bad_component.jpg"] = jpeg_join(segs, rest[:5] + b"\x09" + rest[6:])
    scan = sos + 4 + struct.unpack(">H", rest[2:4])[0] - 2  # first byte of entropy-coded data
    out["jpeg_eoi_in_scan.jpg"] = jpg[:scan + 20] + b"\xff\xd9" + jpg[scan + 20:]
    out["jpeg_bad_huffman_code.jpg"] = jpg[:scan + 8] + b"\xff\x00" * 24 + jpg[scan + 56:]
    out["jpeg_empty.jpg"] = b""
    # a progressive file whose second scan is sent twice: an inconsistent progression
    psegs, prest = jpeg_segments(progressive)
    scans, pos = [], 0
    while True:
        at = prest.find(b"\xff\xda", pos + 2)
        if at < 0:
            break
        scans.append(at)
        pos = at
    second, third = scans[0], scans[1]
    out["jpeg_progressive_repeated_scan.jpg"] = jpeg_join(psegs, prest[:third] + prest[second:third] + prest[third:])
    return out


def main():
    for d in (IMAGES, NPY, BROKEN):
        os.makedirs(d, exist_ok=True)
    for f in os.listdir(BROKEN):
        os.remove(os.path.join(BROKEN, f))
    images = make_images()
    base_npy = make_npy()
    entries, _ = make_safetensors()
    corpus = {}
    corpus.update(broken_png(images["rgb8"], images["palette2"]))
    corpus.update(broken_npy(base_npy))
    corpus.update(broken_safetensors(entries))
    corpus.update(broken_gz(base_npy))
    jpeg_dir = os.path.join(ROOT, "jpeg")  # written by tools/make_image_fixtures.py
    with open(os.path.join(jpeg_dir, "rgb420.jpg"), "rb") as f, open(os.path.join(jpeg_dir, "progressive.jpg"), "rb") as g:
        corpus.update(broken_jpeg(f.read(), g.read()))
    for name, data in corpus.items():
        assert len(data) < 8192, name
        write(os.path.join(BROKEN, name), data)
    with open(os.path.join(BROKEN, "expected.txt"), "w") as fh:
        fh.write("# file<TAB>a piece of the error message lumen must give for it (made by tools/make_broken_corpus.py)\n")
        for name in sorted(EXPECTED):
            assert name in corpus, name
            fh.write(f"{name}\t{EXPECTED[name]}\n")
    print(f"wrote {len(corpus)} broken files to {BROKEN}")


if __name__ == "__main__":
    main()
