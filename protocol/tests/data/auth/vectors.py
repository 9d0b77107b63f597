#!/usr/bin/env python3
"""Known-answer vectors for protocol/src/auth, computed without any Rust code.

Run from this directory: `python3 vectors.py`. It prints the constants that
the tests in protocol/src/auth/*.rs paste verbatim.

* mysql_native_password and caching_sha2_password: hashlib only.
* client_ed25519: a small pure-Python RFC 8032 implementation (the password
  is used as a variable-length seed, as MariaDB does). The implementation is
  cross-checked against the `cryptography` package for ordinary 32-byte seeds,
  and every signature is verified with `cryptography`.
* RSA-OAEP (SHA-1, MGF1-SHA1) with a fixed seed: RFC 8017 section 7.1.1 by
  hand, using only n and e read from rsa_public_spki.pem; the result is
  decrypted with `cryptography` and rsa_private.pem as a self-check.
"""

import hashlib
import pathlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

HERE = pathlib.Path(__file__).resolve().parent

PASSWORDS = [
    b"",
    b"secret",
    b"p@ss w0rd!",
    "pässwörd-密码".encode("utf-8"),
    b"x" * 100,
]
NONCE_A = bytes(range(1, 21))
NONCE_B = bytes.fromhex("3d4b2a1f6e7c0958a1b2c3d4e5f60718293a4b5c")


def sha1(b):
    return hashlib.sha1(b).digest()


def sha256(b):
    return hashlib.sha256(b).digest()


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def native(pw, nonce):
    if not pw:
        return b""
    return xor(sha1(pw), sha1(nonce + sha1(sha1(pw))))


def caching_sha2(pw, nonce):
    if not pw:
        return b""
    return xor(sha256(pw), sha256(sha256(sha256(pw)) + nonce))


# ---- Ed25519, RFC 8032 section 5.1, affine coordinates (slow, plain) ----
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P


def inv(x):
    return pow(x, P - 2, P)


def recover_x(y, sign):
    x2 = (y * y - 1) * inv(D * y * y + 1) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * pow(2, (P - 1) // 4, P) % P
    assert (x * x - x2) % P == 0
    if x & 1 != sign:
        x = P - x
    return x


BY = 4 * inv(5) % P
BASE = (recover_x(BY, 0), BY)


def add(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + x2 * y1) * inv(1 + t) % P, (y1 * y2 + x1 * x2) * inv(1 - t) % P)


def mul(k, pt):
    acc = (0, 1)
    while k:
        if k & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        k >>= 1
    return acc


def encode(pt):
    x, y = pt
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def expand(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed_public(seed):
    a, _ = expand(seed)
    return encode(mul(a, BASE))


def ed_sign(seed, msg):
    a, prefix = expand(seed)
    pub = encode(mul(a, BASE))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % L
    big_r = encode(mul(r, BASE))
    k = int.from_bytes(hashlib.sha512(big_r + pub + msg).digest(), "little") % L
    s = (r + k * a) % L
    return big_r + s.to_bytes(32, "little")


def check_ed25519_against_cryptography():
    for seed in (bytes(32), bytes(range(32)), sha256(b"gapless")):
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert pub == ed_public(seed), "pure-Python public key disagrees with cryptography"
        assert key.sign(b"nonce") == ed_sign(seed, b"nonce"), "pure-Python signature disagrees"


# ---- RSA-OAEP, RFC 8017 section 7.1.1, SHA-1 and MGF1-SHA1, empty label ----
def mgf1(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += sha1(seed + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def oaep_encrypt(n, e, msg, seed):
    k = (n.bit_length() + 7) // 8
    hlen = 20
    assert len(msg) <= k - 2 * hlen - 2
    db = sha1(b"") + bytes(k - len(msg) - 2 * hlen - 2) + b"\x01" + msg
    masked_db = xor(db, mgf1(seed, k - hlen - 1))
    masked_seed = xor(seed, mgf1(masked_db, hlen))
    em = b"\x00" + masked_seed + masked_db
    return pow(int.from_bytes(em, "big"), e, n).to_bytes(k, "big")


def rsa_vector(pw, nonce, seed):
    pub = serialization.load_pem_public_key((HERE / "rsa_public_spki.pem").read_bytes())
    nums = pub.public_numbers()
    plain = bytes(b ^ nonce[i % len(nonce)] for i, b in enumerate(pw + b"\x00"))
    ct = oaep_encrypt(nums.n, nums.e, plain, seed)
    priv = serialization.load_pem_private_key((HERE / "rsa_private.pem").read_bytes(), None)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    assert priv.decrypt(ct, oaep) == plain, "pure-Python OAEP does not decrypt"
    return ct


def main():
    for name, nonce in (("NONCE_A", NONCE_A), ("NONCE_B", NONCE_B)):
        print(f"{name} = {nonce.hex()}")
    print("\n# mysql_native_password")
    for pw in PASSWORDS:
        for name, nonce in (("A", NONCE_A), ("B", NONCE_B)):
            print(f"{pw!r} {name} {native(pw, nonce).hex()}")
    print("\n# caching_sha2_password")
    for pw in PASSWORDS:
        for name, nonce in (("A", NONCE_A), ("B", NONCE_B)):
            print(f"{pw!r} {name} {caching_sha2(pw, nonce).hex()}")

    check_ed25519_against_cryptography()
    print("\n# client_ed25519 (public key, then signature over the nonce)")
    ed_nonces = [bytes(range(32)), sha256(b"mariadb nonce")]
    for pw in PASSWORDS:
        pub = ed_public(pw)
        for i, nonce in enumerate(ed_nonces):
            sig = ed_sign(pw, nonce)
            ed25519.Ed25519PublicKey.from_public_bytes(pub).verify(sig, nonce)
            print(f"{pw!r} nonce{i}={nonce.hex()}\n  pk  {pub.hex()}\n  sig {sig.hex()}")

    print("\n# RSA-OAEP(SHA-1) of (password || NUL) XOR nonce, fixed OAEP seed")
    seed = bytes(range(0xA0, 0xB4))
    ct = rsa_vector(b"secret", NONCE_A, seed)
    print(f"seed {seed.hex()}\nct {ct.hex()}")


if __name__ == "__main__":
    main()
