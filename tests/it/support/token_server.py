"""A Docker registry token service for tests: Basic-authenticates USER:PASSWORD,
grants every scope asked for, signs RS256 JWTs with an x5c header, and logs
each request as `account scope...` lines."""
import base64, json, os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse, parse_qs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

port, key_path, cert_path, user, password, issuer, log_path = sys.argv[1:8]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

def token(service, scopes, account):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    now = int(time.time())
    claims = {"iss": issuer, "sub": account, "aud": service, "exp": now + 600,
              "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(), "access": access}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing + "." + b64url(signature)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        query = parse_qs(urlparse(self.path).query)
        auth = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        account = user if auth == expected else ("-" if not auth else "!wrong")
        with open(log_path, "a") as log:
            log.write(" ".join([account] + query.get("scope", [])) + "\n")
        if account != user:
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"details":"incorrect username or password"}')
            return
        body = json.dumps({"token": token(query.get("service", [""])[0], query.get("scope", []), account),
                           "expires_in": 600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
