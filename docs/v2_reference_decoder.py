#!/usr/bin/env python3
"""Independent decoder of format v2, written from docs/FORMAT.md alone, run over
fixtures/v2: `cd fixtures/v2 && python3 ../../docs/v2_reference_decoder.py`,
and over fixtures/key-file the same way (vectors with a `key_file` unwrap
their data key from the header, "Key files" in FORMAT.md).
Needs the `cryptography` package. A cross-check, not part of the build."""
import struct, hashlib, hmac, glob, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
def hkdf(salt, ikm, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:n]
def decode(obj, key, key_file=None):
    if obj[0] != 2 or obj[1] != 1 or obj[2:4] != b"\0\0": return "header-error", b""
    L = struct.unpack_from("<I", obj, 4)[0]
    if not 1 <= L <= 8192: return "header-error", b""
    T = 8 + L
    if len(obj) < T + 67: return "header-error", b""
    e = obj[T]
    if not 12 <= e <= 24: return "header-error", b""
    salt, com = obj[T+1:T+33], obj[T+33:T+65]
    C = struct.unpack_from("<H", obj, T+65)[0]
    if C > 8192 or len(obj) < T+67+C: return "header-error", b""
    ctx = obj[T+67:T+67+C]
    # context
    try:
        n = struct.unpack_from("<H", ctx, 0)[0]; p = 2; prev = None; keys = {}
        for _ in range(n):
            kl = struct.unpack_from("<H", ctx, p)[0]; k = ctx[p+2:p+2+kl]; p += 2+kl
            if len(k) != kl: raise ValueError
            vl = struct.unpack_from("<H", ctx, p)[0]; v = ctx[p+2:p+2+vl]; p += 2+vl
            if len(v) != vl: raise ValueError
            k.decode(); v.decode()
            if not k or (prev is not None and prev >= k): raise ValueError
            prev = k; keys[k] = v
        if p != len(ctx): raise ValueError
        if keys.get(b"atrest:format") != b"v2/AES-256-GCM/HKDF-SHA-256/commit": raise ValueError
        if any(k.startswith(b"atrest:") and k not in (b"atrest:format", b"atrest:data-key", b"atrest:keyring") for k in keys): raise ValueError
        if keys.get(b"atrest:data-key", b"shared") != b"shared": raise ValueError
        if keys.get(b"atrest:keyring", b"key-file") != b"key-file": raise ValueError
        if b"atrest:data-key" in keys and b"atrest:keyring" in keys: raise ValueError
    except Exception:
        return "header-error", b""
    if key_file is not None:
        if keys.get(b"atrest:keyring") != b"key-file": return "kms-keyring", b""
        w = obj[8:T]
        if len(w) != 60: return "unwrap-failure", b""
        try: key = AESGCM(key_file).decrypt(w[:12], w[12:], ctx)
        except Exception: return "unwrap-failure", b""
    if not hmac.compare_digest(hkdf(salt, key, b"atrest v2 key commitment\x01"), com):
        return "commitment-mismatch", b""
    fk = hkdf(salt, key, b"atrest v2 frame key\x01")
    aad = obj[0:4] + obj[T:T+67+C]
    body = obj[T+67+C:]
    F = 1 << e; S = F + 16
    n, r = divmod(len(body), S)
    if r == 0:
        if n == 0: return "frame-authentication-failure", b""
        frames = [body[i*S:(i+1)*S] for i in range(n)]
    elif r < 16 or (r == 16 and n > 0):
        # invalid length: still release authenticated full frames? keep simple
        frames = None
    else:
        frames = [body[i*S:(i+1)*S] for i in range(n)] + [body[n*S:]]
    out = b""
    g = AESGCM(fk)
    if frames is None: return "frame-authentication-failure", out
    for i, fr in enumerate(frames):
        fin = i == len(frames) - 1
        nonce = i.to_bytes(11, "big") + (b"\x01" if fin else b"\x00")
        try: out += g.decrypt(nonce, fr, aad)
        except Exception: return "frame-authentication-failure", out
    return "ok", out
bad = 0
for m in sorted(glob.glob("*.meta")):
    meta = dict(l.split(": ", 1) for l in open(m).read().splitlines())
    obj = open(meta["object"], "rb").read()
    kf = bytes.fromhex(meta["key_file"]) if "key_file" in meta else None
    res, out = decode(obj, bytes.fromhex(meta["data_key"]), kf)
    good = res == meta["expect"]
    if res == "ok": good &= hashlib.sha256(out).hexdigest() == meta["plaintext_sha256"]
    if not good: bad += 1; print("MISMATCH", m, res, meta["expect"])
print("checked", len(glob.glob("*.meta")), "mismatches", bad)
