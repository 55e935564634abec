"""auth_jwt through the real binary: HS256, RS256 and ES256 tokens made with the
openssl command line against a JWKS file; exp/nbf/iss/aud with leeway; claims passed
upstream as headers; 401 with WWW-Authenticate for every kind of bad token."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import harness
from harness import EchoUpstream, GatewayTestCase, config


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=None):
    return subprocess.run(["openssl"] + list(args), input=data, capture_output=True,
                          check=True).stdout


def der_to_raw(sig):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, 32 bytes each.
    assert sig[0] == 0x30
    i = 2 if sig[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02
        n = sig[i + 1]
        out += sig[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class Keys:
    def __init__(self, d):
        self.secret = b"a shared secret for HS256 tests!"
        self.rsa = os.path.join(d, "rsa.pem")
        self.ec = os.path.join(d, "ec.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                "-out", self.rsa)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.ec)
        modulus = openssl("rsa", "-in", self.rsa, "-noout", "-modulus").decode()
        n = bytes.fromhex(modulus.strip().split("=", 1)[1])
        point = openssl("pkey", "-in", self.ec, "-pubout", "-outform", "DER")[-65:]
        self.jwks = {"keys": [
            {"kty": "oct", "kid": "h1", "k": b64(self.secret)},
            {"kty": "RSA", "kid": "r1", "n": b64(n), "e": b64(b"\x01\x00\x01")},
            {"kty": "EC", "kid": "e1", "crv": "P-256", "x": b64(point[1:33]),
             "y": b64(point[33:])},
        ]}

    def token(self, claims, alg="HS256", kid=None, header=None):
        head = header or {"alg": alg, "typ": "JWT"}
        if kid:
            head["kid"] = kid
        signing = (b64(json.dumps(head).encode()) + "." +
                   b64(json.dumps(claims).encode())).encode()
        if alg == "HS256":
            sig = hmac.new(self.secret, signing, hashlib.sha256).digest()
        elif alg == "RS256":
            sig = openssl("dgst", "-sha256", "-sign", self.rsa, data=signing)
        elif alg == "ES256":
            sig = der_to_raw(openssl("dgst", "-sha256", "-sign", self.ec, data=signing))
        else:
            sig = b""
        return signing.decode() + "." + b64(sig)


class AuthJwt(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        d = harness.tmp_dir()
        cls.keys = Keys(d)
        with open(os.path.join(d, "jwks.json"), "w") as f:
            json.dump(cls.keys.jwks, f)
        cls.app = cls.own(EchoUpstream("app"))
        routes = [{"name": "api", "match": {"path_prefix": "/"}, "service": "app",
                   "filters": [{"type": "auth_jwt", "jwks_file": os.path.join(d, "jwks.json"),
                                "issuer": "https://id.test", "audience": "api",
                                "leeway": "60s",
                                "claims_to_headers": {"sub": "X-User", "admin": "X-Admin"}}]}]
        cls.gw = cls.start_gateway(config({"app": [cls.app.address]}, routes=routes))

    def claims(self, **over):
        now = int(time.time())
        c = {"sub": "user-1", "iss": "https://id.test", "aud": ["other", "api"],
             "exp": now + 600, "nbf": now - 10, "admin": True}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def call(self, token=None, headers=None):
        h = list(headers or [])
        if token is not None:
            h.append(("Authorization", "Bearer " + token))
        return self.client().request("GET", "/x", headers=h)

    def test_every_algorithm_passes_and_claims_go_upstream(self):
        for alg, kid in [("HS256", "h1"), ("RS256", "r1"), ("ES256", "e1"), ("ES256", None)]:
            resp = self.call(self.keys.token(self.claims(), alg, kid),
                             headers=[("X-User", "spoofed")])
            self.assertEqual(resp.status, 200, (alg, resp.body))
            users = [v for k, v in resp.json()["headers"] if k.lower() == "x-user"]
            self.assertEqual(users, ["user-1"], alg)
            self.assertEqual(harness.header_get(resp.json()["headers"], "X-Admin"), "true")

    def assertRefused(self, resp, message, invalid=True):
        self.assertEqual(resp.status, 401)
        self.assertEqual(resp.json()["error"], message)
        www = resp.header("WWW-Authenticate")
        self.assertTrue(www.startswith("Bearer"), www)
        self.assertEqual('error="invalid_token"' in www, invalid)

    def test_claims_checked_with_leeway(self):
        now = int(time.time())
        k = self.keys
        self.assertRefused(self.call(k.token(self.claims(exp=now - 120))), "token expired")
        self.assertEqual(self.call(k.token(self.claims(exp=now - 30))).status, 200)  # leeway
        self.assertRefused(self.call(k.token(self.claims(exp=None))), "token expired")
        self.assertRefused(self.call(k.token(self.claims(nbf=now + 600))), "token not yet valid")
        self.assertEqual(self.call(k.token(self.claims(nbf=now + 30))).status, 200)
        self.assertRefused(self.call(k.token(self.claims(iss="https://evil.test"))),
                           "wrong token issuer")
        self.assertRefused(self.call(k.token(self.claims(aud="web"))), "wrong token audience")
        self.assertEqual(self.call(k.token(self.claims(aud="api"))).status, 200)

    def test_bad_tokens(self):
        k = self.keys
        good = k.token(self.claims())
        self.assertRefused(self.call(), "missing bearer token", invalid=False)
        self.assertRefused(self.call(headers=[("Authorization", "Basic abc")]),
                           "missing bearer token", invalid=False)
        head, body, sig = good.split(".")
        tampered = head + "." + b64(json.dumps(self.claims(sub="root")).encode()) + "." + sig
        self.assertRefused(self.call(tampered), "invalid token signature")
        self.assertRefused(self.call(k.token(self.claims(), "none")),
                           "unsupported token algorithm")
        self.assertRefused(self.call(k.token(self.claims(), "HS256", kid="nope")),
                           "unknown signing key")
        # HS256 "signed" with the RSA key's public bytes must not pass (alg confusion).
        self.assertRefused(self.call(k.token(self.claims(), "RS256", kid="h1")),
                           "unknown signing key")
        for junk in ["", "a.b", "a.b.c.d", "!!!.###.$$$", "e30.e30.", head + ".bm90IGpzb24." + sig,
                     "x" * 15000, head + "." + b64(b'{"a":' * 100) + "." + sig]:
            resp = self.call(junk)
            self.assertEqual(resp.status, 401, junk[:40])


if __name__ == "__main__":
    harness.main()
