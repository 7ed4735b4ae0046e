"""Mutations: byte-level ones for any file, structure-aware ones per format.

Every mutator takes ``(rng, data)`` (``random.Random``, the input) and returns ``(new data, description)``;
the description is short and says what changed (it goes into the failure report). Nothing here reads the
clock or global state: the same ``rng`` state gives the same mutation.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib

# ------------------------------------------------------------------ byte level

INTERESTING_32 = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                  0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
HUGE_TEXT_NUMBERS = ("0", "-1", "-0", "1e999", "-1e999", "9" * 40, "18446744073709551616",
                     "2147483648", "-9223372036854775809", "1e-999", "0.0000001", "NaN", "1.5")


def _offset(rng: random.Random, data: bytes, end_ok: bool = False) -> int:
    return rng.randrange(len(data) + (1 if end_ok else 0)) if data else 0


def bit_flip(rng, data: bytes):
    buf = bytearray(data)
    if not buf:
        return bytes([rng.randrange(256)]), "bit flip on empty input: one random byte"
    n = rng.choice((1, 1, 2, 4, 8))
    where = []
    for _ in range(n):
        i = _offset(rng, buf)
        buf[i] ^= 1 << rng.randrange(8)
        where.append(i)
    return bytes(buf), f"flip {n} bit(s) at {where[:4]}"


def byte_set(rng, data: bytes):
    buf = bytearray(data)
    if not buf:
        return b"\x00", "set byte on empty input"
    value = rng.choice((0x00, 0xFF, rng.randrange(256)))
    n = rng.choice((1, 1, 4, 16))
    i = _offset(rng, buf)
    buf[i:i + n] = bytes([value]) * len(buf[i:i + n])
    return bytes(buf), f"set {n} byte(s) at {i} to 0x{value:02x}"


def chunk_duplicate(rng, data: bytes):
    if not data:
        return data, "duplicate chunk of empty input (no-op)"
    i = _offset(rng, data)
    n = rng.choice((1, 4, 16, 256, 4096))
    chunk = data[i:i + n]
    j = _offset(rng, data, end_ok=True)
    return data[:j] + chunk + data[j:], f"duplicate {len(chunk)} bytes from {i} at {j}"


def chunk_delete(rng, data: bytes):
    if not data:
        return data, "delete chunk of empty input (no-op)"
    i = _offset(rng, data)
    n = rng.choice((1, 4, 16, 256, 4096))
    return data[:i] + data[i + n:], f"delete {min(n, len(data) - i)} bytes at {i}"


def chunk_insert(rng, data: bytes):
    i = _offset(rng, data, end_ok=True)
    n = rng.choice((1, 4, 16, 256))
    fill = rng.choice(("random", "zero", "ff"))
    chunk = (bytes(rng.randrange(256) for _ in range(n)) if fill == "random"
             else (b"\x00" if fill == "zero" else b"\xff") * n)
    return data[:i] + chunk + data[i:], f"insert {n} {fill} bytes at {i}"


def truncate(rng, data: bytes):
    if not data:
        return data, "truncate empty input (no-op)"
    cut = rng.choice((0, 1, rng.randrange(len(data)), rng.randrange(len(data)),
                      max(len(data) - rng.randrange(1, 64), 0)))
    return data[:cut], f"truncate to {cut} of {len(data)} bytes"


def int_splice(rng, data: bytes):
    """A huge/edge integer written over the data: into a run of ASCII digits when there is one (text
    formats), else as a 32-bit little- or big-endian word (binary headers)."""
    import re

    runs = [m.span() for m in re.finditer(rb"-?[0-9]+(\.[0-9]+)?", data[:1 << 20])]
    if runs and rng.random() < 0.7:
        a, b = rng.choice(runs)
        text = rng.choice(HUGE_TEXT_NUMBERS).encode()
        return data[:a] + text + data[b:], f"number at {a} -> {text.decode()}"
    if len(data) < 4:
        return data + b"\xff\xff\xff\xff", "append 0xffffffff"
    i = rng.randrange(0, len(data) - 3)
    if rng.random() < 0.5:
        i -= i % 4
    v = rng.choice(INTERESTING_32)
    order = rng.choice("<>")
    return data[:i] + struct.pack(order + "I", v) + data[i + 4:], f"u32{order} at {i} -> {v:#x}"


BYTE_MUTATORS = (bit_flip, byte_set, chunk_duplicate, chunk_delete, chunk_insert, truncate, int_splice)


def mutate_bytes(rng, data: bytes, rounds: int | None = None):
    """1-3 stacked byte-level mutations."""
    rounds = rounds or rng.choice((1, 1, 1, 2, 3))
    desc = []
    for _ in range(rounds):
        data, d = rng.choice(BYTE_MUTATORS)(rng, data)
        desc.append(d)
    return data, "; ".join(desc)


# ------------------------------------------------------------------ JSON / YAML values

class Raw:
    """Text put verbatim into the serialised document (what json/yaml cannot emit: deep nesting, NaN,
    a 40-digit literal, a lone surrogate, an alias bomb)."""

    def __init__(self, text: str, what: str):
        self.text, self.what = text, what


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON-like tree, the root excluded."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((prefix + (k,), v))
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.append((prefix + (i,), v))
            out.extend(_paths(v, prefix + (i,)))
    return out


def _parent(obj, path):
    for p in path[:-1]:
        obj = obj[p]
    return obj


def _deep(n: int, yaml_flow: bool = False) -> str:
    return "[" * n + "]" * n


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A YAML "billion laughs": ``width ** levels`` leaves through aliases (a few hundred bytes of text)."""
    parts = ["&a0 [" + ", ".join(["lol"] * width) + "]"]
    text = parts[0]
    for k in range(1, levels):
        text = f"&a{k} [" + ", ".join([text if j == 0 else f"*a{k - 1}" for j in range(width)]) + "]"
    return text


def _replacement(rng, value, fmt: str):
    """A new value for a node: another type, an edge number, a long string, deep nesting..."""
    choices = ["type", "type", "huge", "negative", "zero", "nan", "long", "deep", "empty", "bool", "float"]
    if fmt == "yaml":
        choices += ["yaml-special", "yaml-bomb"]
    else:
        choices += ["json-special"]
    what = rng.choice(choices)
    if what == "type":
        new = rng.choice((None, True, False, 0, 1, -1, 3.5, "", "x", "auto", "native", [], {}, [1, 2], {"k": 1},
                          [None], "\u00e9\u4e2d", "a\nb"))
        return new, f"-> {json.dumps(new)}"
    if what == "huge":
        new = rng.choice((10 ** 30, 2 ** 63, 2 ** 64, 2 ** 31, 10 ** 308 * 10, 1e308))
        if isinstance(new, int) and new > 2 ** 64 and rng.random() < 0.5:
            return Raw(str(new), "huge int"), f"-> {new}"
        return new, f"-> {new!r}"
    if what == "negative":
        new = rng.choice((-1, -2 ** 31, -10 ** 20, -0.5))
        return new, f"-> {new}"
    if what == "zero":
        return rng.choice((0, 0.0)), "-> 0"
    if what == "float":
        new = rng.choice((0.5, 1e-300, 5e-324, 64.0, 1.0))
        return new, f"-> {new!r}"
    if what == "bool":
        return rng.choice((True, False)), "-> bool"
    if what == "nan":
        text = rng.choice(("NaN", "Infinity", "-Infinity")) if fmt == "json" else rng.choice((".nan", ".inf", "-.inf"))
        return Raw(text, text), f"-> {text}"
    if what == "long":
        n = rng.choice((1000, 100_000, 1_000_000))
        return "A" * n, f"-> string of {n} chars"
    if what == "deep":
        n = rng.choice((100, 1000, 10_000, 100_000))
        return Raw(_deep(n), f"nesting {n}"), f"-> nested list depth {n}"
    if what == "empty":
        new = rng.choice(([], {}, ""))
        return new, f"-> {json.dumps(new)}"
    if what == "json-special":
        text = rng.choice(('"\\ud800"', '"\\u0000"', "1" + "0" * 5000, "-0", "1E400", '"\\udfff\\ud800"'))
        return Raw(text, text[:20]), f"-> raw {text[:24]}"
    if what == "yaml-special":
        text = rng.choice(("~", "yes", "no", "0x7fffffffffffffffffff", "0o777", "1_000", "2001-12-14",
                           "!!binary aGVsbG8=", "!!set {a, b}", "!!python/object:os.system {}", "!!float 1e999",
                           "&x [*x]", "*undefined", "'\\x00'", "\"\\x00\"", "!!timestamp 2001-12-14t21:59:43.10-05:00",
                           "!!omap [a: 1]", "!!int 99999999999999999999999"))
        return Raw(text, text), f"-> yaml {text}"
    # yaml-bomb
    levels = rng.choice((4, 6, 9))
    return Raw(_alias_bomb(levels), f"alias bomb 9**{levels}"), f"-> alias bomb of 9**{levels} leaves"


def _rename(rng, key):
    if not isinstance(key, str):
        return key + 1 if isinstance(key, int) else "renamed"
    how = rng.choice(("suffix", "case", "empty", "dash", "random", "int"))
    if how == "suffix":
        return key + "_"
    if how == "case":
        return key.upper()
    if how == "empty":
        return ""
    if how == "dash":
        return key.replace("_", "-").replace("-", "_") if ("_" in key or "-" in key) else key + "-x"
    if how == "int":
        return 7
    return "".join(rng.choice("abcxyz_") for _ in range(rng.randrange(1, 8)))


def mutate_tree(rng, obj, fmt: str):
    """One structure-aware mutation of a parsed JSON/YAML document; returns ``(tree, description)``. The tree may
    hold :class:`Raw` values (see :func:`dump_tree`)."""
    paths = _paths(obj)
    op = rng.choice(("replace", "replace", "replace", "remove", "rename", "swap", "duplicate", "root"))
    if op == "root" or not paths:
        new, d = _replacement(rng, obj, fmt)
        return new, f"document {d}"
    path, value = rng.choice(paths)
    parent = _parent(obj, path)
    where = "/".join(map(str, path))
    if len(where) > 80:
        where = where[:77] + "..."
    if op == "replace":
        new, d = _replacement(rng, value, fmt)
        parent[path[-1]] = new
        return obj, f"{where} {d}"
    if op == "remove":
        del parent[path[-1]]
        return obj, f"remove {where}"
    if op == "rename" and isinstance(parent, dict):
        new_key = _rename(rng, path[-1])
        if fmt == "json":
            new_key = str(new_key)
        items = [(new_key if k == path[-1] else k, v) for k, v in parent.items()]
        parent.clear()
        parent.update(items)
        return obj, f"rename key {where} -> {new_key!r}"
    if op == "swap":
        other_path, other = rng.choice(paths)
        import copy

        parent[path[-1]] = copy.deepcopy(other)
        return obj, f"{where} <- copy of {'/'.join(map(str, other_path))[:60]}"
    # duplicate (lists) / rename for list parents
    if isinstance(parent, list):
        parent.insert(path[-1], parent[path[-1]])
        return obj, f"duplicate list item {where}"
    parent[path[-1]] = [value, value]
    return obj, f"{where} -> [value, value]"


def _collect_raw(obj, found):
    if isinstance(obj, Raw):
        token = f"@@RAW{len(found)}@@"
        found.append((token, obj.text))
        return token
    if isinstance(obj, dict):
        return {k: _collect_raw(v, found) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_collect_raw(v, found) for v in obj]
    return obj


def dump_tree(obj, fmt: str) -> bytes:
    raws: list = []
    obj = _collect_raw(obj, raws)
    if fmt == "json":
        text = json.dumps(obj, indent=1, allow_nan=True)
        for token, raw in raws:
            text = text.replace(json.dumps(token), raw)
        return text.encode("utf-8", "surrogatepass")
    import yaml

    text = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=1 << 30)
    for token, raw in raws:
        text = text.replace(token, raw)
    return text.encode("utf-8", "surrogatepass")


def mutate_json(rng, data: bytes):
    """Structure-aware (2/3) or byte-level (1/3) mutation of a JSON document."""
    if rng.random() < 1 / 3:
        return mutate_bytes(rng, data)
    obj = json.loads(data)
    desc = []
    for _ in range(rng.choice((1, 1, 2))):
        obj, d = mutate_tree(rng, obj, "json")
        desc.append(d)
        if isinstance(obj, Raw) or not isinstance(obj, (dict, list)):
            break
    return dump_tree(obj, "json"), "json: " + "; ".join(desc)


def mutate_yaml(rng, data: bytes):
    if rng.random() < 0.3:
        return mutate_bytes(rng, data)
    import yaml

    obj = yaml.safe_load(data)
    desc = []
    for _ in range(rng.choice((1, 1, 2))):
        obj, d = mutate_tree(rng, obj, "yaml")
        desc.append(d)
        if isinstance(obj, Raw) or not isinstance(obj, (dict, list)):
            break
    out = dump_tree(obj, "yaml")
    if rng.random() < 0.1:  # and a byte-level one on top
        out, d = mutate_bytes(rng, out, 1)
        desc.append(d)
    return out, "yaml: " + "; ".join(desc)


# ------------------------------------------------------------------ JSON lines (MetaSchedule database)

def mutate_json_lines(rng, data: bytes):
    """One line of a one-JSON-value-per-line file, structure-aware; or a byte-level mutation; or the base64 payload
    of a workload (decoded, mutated, re-encoded so that the JSON inside is what the parser meets)."""
    import base64

    lines = data.split(b"\n")
    idx = [i for i, ln in enumerate(lines) if ln.strip()]
    r = rng.random()
    if r < 0.3 or not idx:
        return mutate_bytes(rng, data)
    i = rng.choice(idx)
    value = json.loads(lines[i])
    if r < 0.55 and isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
        try:
            blob = base64.b64decode(value[1], validate=True)
        except ValueError:
            blob = None
        if blob is not None:
            # TVM's format: an 8-byte little-endian length, then the JSON text
            head, body = blob[:8], blob[8:]
            try:
                obj = json.loads(body)
                structured = rng.random() < 0.6
            except ValueError:
                structured = False
            if structured:
                obj, d = mutate_tree(rng, obj, "json")
                body = dump_tree(obj, "json")
                if rng.random() < 0.8:
                    head = struct.pack("<Q", len(body))
                d = "payload json: " + d
            else:
                blob2, d = mutate_bytes(rng, head + body)
                head, body = blob2[:8], blob2[8:]
                d = "payload bytes: " + d
            value[1] = base64.b64encode(head + body).decode()
            lines[i] = json.dumps(value).encode()
            return b"\n".join(lines), f"line {i + 1} {d}"
    value, d = mutate_tree(rng, value, "json")
    lines[i] = dump_tree(value, "json").replace(b"\n", b"")
    return b"\n".join(lines), f"line {i + 1} json: {d}"


# ------------------------------------------------------------------ WAV

def _riff_chunks(data: bytes):
    """``[(offset of the chunk id, id, size)]`` after the 12-byte RIFF header (best effort on valid seeds)."""
    out, pos = [], 12
    while pos + 8 <= len(data):
        cid = data[pos:pos + 4]
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        out.append((pos, cid, size))
        pos += 8 + size + (size & 1)
    return out


_WAV_FIELDS = {  # name: (offset in the fmt payload, struct format)
    "format_tag": (0, "<H"), "channels": (2, "<H"), "sample_rate": (4, "<I"), "byte_rate": (8, "<I"),
    "block_align": (12, "<H"), "bits": (14, "<H"),
}
_WAV_VALUES = {"<H": (0, 1, 2, 3, 7, 8, 12, 16, 24, 32, 33, 64, 255, 0x7FFF, 0xFFFE, 0xFFFF),
               "<I": (0, 1, 2, 3, 7, 8000, 16000, 44100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)}


def mutate_wav(rng, data: bytes):
    if rng.random() < 0.3:
        return mutate_bytes(rng, data)
    buf = bytearray(data)
    chunks = _riff_chunks(data)
    fmt = next((c for c in chunks if c[1] == b"fmt "), None)
    dat = next((c for c in chunks if c[1] == b"data"), None)
    op = rng.choice(("field", "field", "field", "riff_size", "chunk_size", "chunk_size", "extra_chunk",
                     "drop_chunk", "dup_chunk", "swap_chunks", "extensible", "magic", "cut_data"))
    if op == "field" and fmt:
        name = rng.choice(list(_WAV_FIELDS))
        off, f = _WAV_FIELDS[name]
        v = rng.choice(_WAV_VALUES[f])
        struct.pack_into(f, buf, fmt[0] + 8 + off, v)
        return bytes(buf), f"wav fmt {name} -> {v}"
    if op == "riff_size":
        v = rng.choice((0, 1, 4, len(data) - 9, len(data) - 8 + 1000, 0xFFFFFFFF, 0x7FFFFFFF))
        struct.pack_into("<I", buf, 4, max(v, 0))
        return bytes(buf), f"wav RIFF size -> {v}"
    if op == "chunk_size" and chunks:
        c = rng.choice(chunks)
        v = rng.choice((0, 1, 2, 3, 14, 15, 16, 17, 18, 40, c[2] - 1, c[2] + 1, c[2] * 2, 0x7FFFFFFF,
                        0xFFFFFFFF, 0xFFFFFFF0))
        struct.pack_into("<I", buf, c[0] + 4, max(v, 0) & 0xFFFFFFFF)
        return bytes(buf), f"wav chunk {c[1].decode('latin-1')!r} size {c[2]} -> {v}"
    if op == "extra_chunk":
        cid = rng.choice((b"LIST", b"JUNK", b"fact", b"cue ", b"\x00\x00\x00\x00", b"data", b"fmt "))
        size = rng.choice((0, 1, 3, 4, 0xFFFFFFFF))
        body = bytes(rng.randrange(256) for _ in range(min(size, 16)))
        at = rng.choice([c[0] for c in chunks] + [len(data), 12])
        buf[at:at] = cid + struct.pack("<I", size) + body
        return bytes(buf), f"wav insert chunk {cid!r} size {size} at {at}"
    if op == "drop_chunk" and chunks:
        c = rng.choice(chunks)
        del buf[c[0]:c[0] + 8 + c[2] + (c[2] & 1)]
        return bytes(buf), f"wav drop chunk {c[1]!r}"
    if op == "dup_chunk" and chunks:
        c = rng.choice(chunks)
        piece = data[c[0]:c[0] + 8 + c[2] + (c[2] & 1)]
        buf[c[0]:c[0]] = piece
        return bytes(buf), f"wav duplicate chunk {c[1]!r}"
    if op == "swap_chunks" and fmt and dat:
        a = data[fmt[0]:fmt[0] + 8 + fmt[2]]
        b = data[dat[0]:dat[0] + 8 + dat[2] + (dat[2] & 1)]
        return data[:12] + b + a + data[max(fmt[0] + 8 + fmt[2], dat[0] + len(b)):], "wav data chunk before fmt"
    if op == "extensible" and fmt:
        # WAVE_FORMAT_EXTENSIBLE with a 22-byte extension whose sub-format GUID is random or PCM/float
        struct.pack_into("<H", buf, fmt[0] + 8, 0xFFFE)
        ext = struct.pack("<HHI", rng.choice((0, 22, 0xFFFF)), rng.choice((0, 16, 64)), rng.choice((0, 3, 0xFFFFFFFF)))
        guid = rng.choice((b"\x01\x00", b"\x03\x00", b"\x55\x00", bytes([rng.randrange(256), 0]))) + \
            b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        payload = bytes(buf[fmt[0] + 8:fmt[0] + 8 + 16]) + ext + guid
        new_fmt = b"fmt " + struct.pack("<I", len(payload)) + payload
        out = bytes(buf[:fmt[0]]) + new_fmt + bytes(buf[fmt[0] + 8 + fmt[2]:])
        return out, "wav fmt -> WAVE_FORMAT_EXTENSIBLE"
    if op == "magic":
        magic = rng.choice((b"RIFX", b"RF64", b"RIFF", b"riff"))
        wave = rng.choice((b"WAVE", b"AVI ", b"wave"))
        buf[0:4], buf[8:12] = magic, wave
        return bytes(buf), f"wav magic {magic!r} {wave!r}"
    if op == "cut_data" and dat:
        # cut the data chunk and make every size field agree (a consistent but short file)
        keep = rng.randrange(0, max(dat[2], 1))
        end = dat[0] + 8 + keep
        out = bytearray(data[:end])
        struct.pack_into("<I", out, dat[0] + 4, keep if rng.random() < 0.5 else dat[2])
        struct.pack_into("<I", out, 4, len(out) - 8)
        return bytes(out), f"wav data cut to {keep} bytes"
    return mutate_bytes(rng, data)


# ------------------------------------------------------------------ PNG

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_chunks(data: bytes):
    out, pos = [], 8
    while pos + 12 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        ctype = data[pos + 4:pos + 8]
        out.append([ctype, data[pos + 8:pos + 8 + length]])
        pos += 12 + length
    return out


def _png_build(chunks, broken_crc=()):
    parts = [PNG_SIG]
    for i, (ctype, body) in enumerate(chunks):
        crc = zlib.crc32(ctype + body) & 0xFFFFFFFF
        if i in broken_crc:
            crc ^= 0x1
        parts.append(struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", crc))
    return b"".join(parts)


def mutate_png(rng, data: bytes):
    if rng.random() < 0.25:
        return mutate_bytes(rng, data)
    chunks = _png_chunks(data)
    op = rng.choice(("ihdr", "ihdr", "ihdr", "crc", "idat_cut", "idat_cut", "idat_random", "idat_bomb",
                     "drop", "dup", "len", "palette", "text_bomb", "no_iend"))
    ih = next(i for i, c in enumerate(chunks) if c[0] == b"IHDR")
    idats = [i for i, c in enumerate(chunks) if c[0] == b"IDAT"]
    if op == "ihdr":
        body = bytearray(chunks[ih][1])
        field = rng.choice(("width", "height", "both", "depth", "colour", "compression", "filter", "interlace"))
        if field in ("width", "height", "both"):
            v = rng.choice((0, 1, 2, 65535, 100_000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF))
            if field in ("width", "both"):
                struct.pack_into(">I", body, 0, v)
            if field in ("height", "both"):
                struct.pack_into(">I", body, 4, v)
            d = f"png IHDR {field} -> {v}"
        else:
            off = {"depth": 8, "colour": 9, "compression": 10, "filter": 11, "interlace": 12}[field]
            v = rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 255))
            body[off] = v
            d = f"png IHDR {field} -> {v}"
        chunks[ih][1] = bytes(body)
        return _png_build(chunks, broken_crc=(ih,) if rng.random() < 0.1 else ()), d
    if op == "crc":
        i = rng.randrange(len(chunks))
        return _png_build(chunks, broken_crc=(i,)), f"png CRC of {chunks[i][0]!r} broken"
    if op == "idat_cut" and idats:
        i = rng.choice(idats)
        body = chunks[i][1]
        keep = rng.randrange(len(body) + 1)
        chunks[i][1] = body[:keep]
        return _png_build(chunks), f"png IDAT cut to {keep} of {len(body)} bytes (CRC fixed)"
    if op == "idat_random" and idats:
        i = rng.choice(idats)
        n = rng.choice((0, 1, 16, len(chunks[i][1])))
        raw = bytes(rng.randrange(256) for _ in range(n))
        chunks[i][1] = zlib.compress(raw) if rng.random() < 0.5 else raw
        return _png_build(chunks), f"png IDAT -> {n} random bytes"
    if op == "idat_bomb" and idats:
        # a small IDAT inflating to far more than the image needs
        n = rng.choice((1 << 20, 64 << 20))
        chunks[idats[0]][1] = zlib.compress(b"\x00" * n, 9)
        return _png_build(chunks), f"png IDAT inflates to {n} bytes"
    if op == "drop":
        i = rng.randrange(len(chunks))
        c = chunks.pop(i)
        return _png_build(chunks), f"png drop chunk {c[0]!r}"
    if op == "dup":
        i = rng.randrange(len(chunks))
        chunks.insert(rng.randrange(len(chunks) + 1), list(chunks[i]))
        return _png_build(chunks), f"png duplicate chunk {chunks[i][0]!r}"
    if op == "len":
        # a chunk length field that lies (CRC then over the wrong span)
        out = bytearray(_png_build(chunks))
        pos, k = 8, rng.randrange(len(chunks))
        for c in chunks[:k]:
            pos += 12 + len(c[1])
        v = rng.choice((0, 1, len(chunks[k][1]) + 1, 0x7FFFFFFF, 0xFFFFFFFF))
        struct.pack_into(">I", out, pos, v)
        return bytes(out), f"png length of {chunks[k][0]!r} -> {v}"
    if op == "palette":
        n = rng.choice((0, 1, 2, 255, 300 * 3, 769))
        chunks.insert(ih + 1, [b"PLTE", bytes(rng.randrange(256) for _ in range(n))])
        if rng.random() < 0.5:
            chunks.insert(ih + 2, [b"tRNS", b"\x00" * rng.choice((0, 1, 300))])
        return _png_build(chunks), f"png PLTE of {n} bytes"
    if op == "text_bomb":
        kind = rng.choice((b"zTXt", b"iCCP", b"iTXt"))
        blob = zlib.compress(b"A" * (rng.choice((1, 32)) << 20), 9)
        body = b"k\x00\x00" + blob if kind != b"iTXt" else b"k\x00\x01\x00\x00\x00" + blob
        chunks.insert(ih + 1, [kind, body])
        return _png_build(chunks), f"png {kind.decode()} decompression bomb"
    if op == "no_iend":
        chunks = [c for c in chunks if c[0] != b"IEND"]
        return _png_build(chunks), "png without IEND"
    return mutate_bytes(rng, data)


# ------------------------------------------------------------------ MP4 (ISO BMFF)

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta", b"mvex"}


def _boxes(data: bytes, start=0, end=None, depth=0):
    """``[(offset, size, type, header size, depth)]`` of every box, containers walked (stsd entries not)."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, btype = struct.unpack(">I4s", data[pos:pos + 8])
        hdr = 8
        if size == 1 and pos + 16 <= end:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            hdr = 16
        elif size == 0:
            size = end - pos
        if size < hdr or pos + size > end:
            break
        out.append((pos, size, btype, hdr, depth))
        if btype in _CONTAINERS:
            out.extend(_boxes(data, pos + hdr, pos + size, depth + 1))
        elif btype == b"stsd":
            out.extend(_boxes(data, pos + hdr + 8, pos + size, depth + 1))
        pos += size
    return out


def mutate_mp4(rng, data: bytes):
    if rng.random() < 0.3:
        return mutate_bytes(rng, data)
    boxes = _boxes(data)
    if not boxes:
        return mutate_bytes(rng, data)
    buf = bytearray(data)
    op = rng.choice(("size", "size", "field", "field", "field", "field", "type", "drop", "dup", "cut_box"))
    off, size, btype, hdr, _ = rng.choice(boxes)
    name = btype.decode("latin-1")
    if op == "size":
        v = rng.choice((0, 1, 2, 7, 8, size - 1, size + 1, size * 2, 0x7FFFFFFF, 0xFFFFFFFF))
        struct.pack_into(">I", buf, off, max(v, 0) & 0xFFFFFFFF)
        return bytes(buf), f"mp4 box {name}@{off} size {size} -> {v}"
    if op == "field" and size > hdr + 4:
        # a 32-bit (or 16-bit) word of the box payload: counts, timescales, widths, offsets, ...
        if btype == b"mdat":
            at = off + hdr + rng.randrange(min(size - hdr - 4, 4096))
        else:
            at = off + hdr + 4 * rng.randrange((size - hdr) // 4)
        at = min(at, off + size - 4)
        if rng.random() < 0.75:
            v = rng.choice(INTERESTING_32)
            struct.pack_into(">I", buf, at, v)
        else:
            v = rng.choice((0, 1, 0x7FFF, 0xFFFF))
            struct.pack_into(">H", buf, at, v)
        return bytes(buf), f"mp4 box {name}@{off} word at +{at - off} -> {v:#x}"
    if op == "type":
        new = rng.choice((b"free", b"moov", b"trak", b"mdat", b"\x00\x00\x00\x00", b"uuid", b"stsd"))
        buf[off + 4:off + 8] = new
        return bytes(buf), f"mp4 box {name}@{off} type -> {new!r}"
    if op == "drop":
        del buf[off:off + size]
        return bytes(buf), f"mp4 drop box {name}@{off} ({size} bytes)"
    if op == "dup":
        piece = data[off:off + size]
        buf[off:off] = piece
        return bytes(buf), f"mp4 duplicate box {name}@{off}"
    if op == "cut_box":
        keep = rng.randrange(size)
        del buf[off + keep:off + size]
        return bytes(buf), f"mp4 cut box {name}@{off} to {keep} of {size} bytes (size field kept)"
    return mutate_bytes(rng, data)


# ------------------------------------------------------------------ ELF shared object (model.so)

def mutate_elf(rng, data: bytes):
    """Header fields (ELF header, program and section headers), truncation, zeroed or random chunks, and (rarely)
    plain bit flips anywhere."""
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return mutate_bytes(rng, data)
    buf = bytearray(data)
    e_phoff, e_shoff = struct.unpack_from("<QQ", data, 0x20)
    e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    op = rng.choice(("truncate", "truncate", "ehdr", "phdr", "phdr", "shdr", "zero", "random", "bits", "append"))
    if op == "truncate":
        cut = rng.choice((0, 4, 63, 64, e_phoff + e_phentsize * e_phnum, rng.randrange(len(data)),
                          rng.randrange(len(data)), len(data) - rng.randrange(1, 4096), len(data) // 2))
        cut = max(0, min(cut, len(data) - 1))
        return data[:cut], f"elf truncate to {cut} of {len(data)} bytes"
    if op == "ehdr":
        fields = {"e_ident class": (4, "B"), "e_ident data": (5, "B"), "e_type": (16, "<H"), "e_machine": (18, "<H"),
                  "e_phoff": (0x20, "<Q"), "e_shoff": (0x28, "<Q"), "e_phentsize": (0x36, "<H"),
                  "e_phnum": (0x38, "<H"), "e_shentsize": (0x3A, "<H"), "e_shnum": (0x3C, "<H"),
                  "e_shstrndx": (0x3E, "<H")}
        name = rng.choice(list(fields))
        off, f = fields[name]
        size = struct.calcsize(f)
        v = rng.choice((0, 1, 2, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF, len(data), len(data) + 1))
        v &= (1 << (8 * size)) - 1
        struct.pack_into(f, buf, off, v)
        return bytes(buf), f"elf {name} -> {v:#x}"
    if op == "phdr" and e_phnum:
        k = rng.randrange(e_phnum)
        base = e_phoff + k * e_phentsize
        fields = {"p_type": (0, "<I"), "p_flags": (4, "<I"), "p_offset": (8, "<Q"), "p_vaddr": (16, "<Q"),
                  "p_filesz": (32, "<Q"), "p_memsz": (40, "<Q"), "p_align": (48, "<Q")}
        name = rng.choice(list(fields))
        off, f = fields[name]
        old = struct.unpack_from(f, data, base + off)[0]
        v = rng.choice((0, 1, old + 4096, old * 2 + 1, len(data), len(data) * 4, 0x7FFFFFFF, 0xFFFFFFFF,
                        0xFFFFFFFFFFFFFFFF))
        v &= (1 << (8 * struct.calcsize(f))) - 1
        struct.pack_into(f, buf, base + off, v)
        return bytes(buf), f"elf phdr[{k}].{name} {old:#x} -> {v:#x}"
    if op == "shdr" and e_shnum and e_shoff + e_shnum * e_shentsize <= len(data):
        k = rng.randrange(e_shnum)
        base = e_shoff + k * e_shentsize
        fields = {"sh_name": (0, "<I"), "sh_type": (4, "<I"), "sh_offset": (24, "<Q"), "sh_size": (32, "<Q"),
                  "sh_link": (40, "<I"), "sh_entsize": (56, "<Q")}
        name = rng.choice(list(fields))
        off, f = fields[name]
        v = rng.choice((0, 1, 0xFFFF, len(data), 0xFFFFFFFF))
        struct.pack_into(f, buf, base + off, v)
        return bytes(buf), f"elf shdr[{k}].{name} -> {v:#x}"
    if op == "zero":
        n = rng.choice((64, 4096, 65536))
        i = rng.randrange(len(data))
        buf[i:i + n] = bytes(len(buf[i:i + n]))
        return bytes(buf), f"elf zero {n} bytes at {i}"
    if op == "random":
        n = rng.choice((16, 4096))
        i = rng.randrange(len(data))
        buf[i:i + n] = bytes(rng.randrange(256) for _ in range(len(buf[i:i + n])))
        return bytes(buf), f"elf {n} random bytes at {i}"
    if op == "append":
        return data + bytes(rng.randrange(256) for _ in range(rng.choice((1, 4096)))), "elf append bytes"
    return bit_flip(rng, data)


# ------------------------------------------------------------------ torch checkpoint (zip + pickle)

def mutate_zip_members(rng, data: bytes):
    """A member of a torch zip (``data.pkl``, a storage, ``version``, ``byteorder``): mutated, cut, dropped or
    emptied, and the zip written again (stored, as torch writes it), so the damage is past the zip layer."""
    import zipfile

    zin = zipfile.ZipFile(io.BytesIO(data))
    members = [(i, zin.read(i)) for i in zin.infolist()]
    names = [i.filename for i, _ in members]
    pkl = [k for k, n in enumerate(names) if n.endswith("data.pkl")]
    k = pkl[0] if pkl and rng.random() < 0.5 else rng.randrange(len(members))
    info, body = members[k]
    op = rng.choice(("bytes", "bytes", "cut", "drop", "empty"))
    if op == "bytes":
        body, d = mutate_bytes(rng, body)
    elif op == "cut":
        keep = rng.randrange(len(body) + 1) if body else 0
        body, d = body[:keep], f"cut to {keep} bytes"
    elif op == "empty":
        body, d = b"", "emptied"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for j, (inf, b) in enumerate(members):
            if j == k:
                if op == "drop":
                    continue
                b = body
            zout.writestr(inf.filename, b)
    return out.getvalue(), f"zip member {info.filename}: {'dropped' if op == 'drop' else d}"


def mutate_checkpoint_object(rng, obj):
    """A structure-aware change to the loaded checkpoint dict (re-saved with torch.save by the caller)."""
    import torch

    op = rng.choice(("variant", "fusion", "format", "state_dict_type", "tensor_shape", "tensor_dtype",
                     "tensor_value", "tensor_value", "drop_key", "add_key", "rename_key", "root", "scalar"))
    sd = obj.get("state_dict") if isinstance(obj, dict) else None
    keys = list(sd) if isinstance(sd, dict) else []
    if op == "variant":
        v = rng.choice((None, 0, 7, "", "huge", "TINY", "tiny ", "large", "l", ["tiny"], {"name": "tiny"}, True))
        obj["variant"] = v
        return obj, f"checkpoint variant -> {v!r}"
    if op == "fusion":
        v = rng.choice((None, 0, "", "bogus", "tpavi", "avsegformer", ["lightavseg"]))
        obj["fusion"] = v
        return obj, f"checkpoint fusion -> {v!r}"
    if op == "format":
        v = rng.choice((None, "edgeavs-checkpoint/2", 1, ""))
        if v is None:
            obj.pop("format", None)
        else:
            obj["format"] = v
        return obj, f"checkpoint format -> {v!r}"
    if op == "state_dict_type":
        v = rng.choice((None, [], 0, "weights", torch.zeros(3)))
        obj["state_dict"] = v
        return obj, f"checkpoint state_dict -> {type(v).__name__}"
    if op == "root":
        v = rng.choice(([obj], torch.zeros(2), None, "edgeavs-checkpoint/1", 42))
        return v, f"checkpoint root -> {type(v).__name__}"
    if not keys:
        return obj, "checkpoint (no state_dict keys)"
    key = rng.choice(keys)
    t = sd[key]
    if op == "tensor_shape":
        shape = rng.choice(((), (0,), (1,), tuple(t.shape) + (1,), tuple(t.shape)[:-1], (t.numel() + 1,)))
        sd[key] = torch.zeros(shape, dtype=t.dtype if t.is_floating_point() else torch.float32)
        return obj, f"state_dict[{key}] shape {tuple(t.shape)} -> {shape}"
    if op == "tensor_dtype":
        dt = rng.choice((torch.int64, torch.bool, torch.complex64, torch.float16, torch.uint8, torch.float64))
        sd[key] = t.to(dt)
        return obj, f"state_dict[{key}] dtype {t.dtype} -> {dt}"
    if op == "tensor_value":
        v = rng.choice(("nan", "inf", "huge"))
        sd[key] = torch.full_like(t, {"nan": float("nan"), "inf": float("inf"), "huge": 3e38}[v]) \
            if t.is_floating_point() else t
        return obj, f"state_dict[{key}] filled with {v}"
    if op == "scalar":
        v = rng.choice((0, 1.5, None, "x", [1, 2], {"a": 1}))
        sd[key] = v
        return obj, f"state_dict[{key}] -> {v!r}"
    if op == "drop_key":
        del sd[key]
        return obj, f"state_dict drop {key}"
    if op == "add_key":
        sd[key + ".extra"] = torch.zeros(1)
        return obj, f"state_dict add {key}.extra"
    sd[key + "_"] = sd.pop(key)
    return obj, f"state_dict rename {key}"


def checkpoint_mutation(rng, data: bytes, obj=None):
    """``(new bytes, description)`` for a torch checkpoint file: object-level (re-saved), zip-member-level, or raw
    bytes (biased to the zip's metadata: the end of the file and data.pkl, not the weights). ``obj``: the file
    already loaded (a copy the mutation may change at its top level and in its state_dict)."""
    import torch

    r = rng.random()
    if r < 0.45:
        if obj is None:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        obj, d = mutate_checkpoint_object(rng, obj)
        out = io.BytesIO()
        torch.save(obj, out)
        return out.getvalue(), d
    if r < 0.75:
        return mutate_zip_members(rng, data)
    # raw bytes: in the last 4 KiB (central directory) or the first 4 KiB (data.pkl) half the time
    head = rng.random()
    if head < 0.25:
        cut = len(data) - 4096
        new, d = mutate_bytes(rng, data[cut:])
        return data[:cut] + new, f"tail: {d}"
    if head < 0.5:
        new, d = mutate_bytes(rng, data[:4096])
        return new + data[4096:], f"head: {d}"
    return mutate_bytes(rng, data)


def describe_exc(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:297] + "..."


__all__ = ["mutate_bytes", "mutate_json", "mutate_yaml", "mutate_json_lines", "mutate_wav", "mutate_png",
           "mutate_mp4", "mutate_elf", "checkpoint_mutation"]
