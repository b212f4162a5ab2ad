"""A fault-injecting HTTP proxy in front of a plain-HTTP registry, for tests.

Every request is passed to UPSTREAM unchanged, except:
  --cut-above N    the first GET of each blob larger than N bytes gets its
                   headers and only the first half of its body, then the
                   connection is closed (a dropped download);
  --redirect URL   a GET of a blob is answered with a 307 to URL + its path
                   + "?redirected=1" (a request carrying that query is passed on);
                   URL "self" is the proxy's own http://LISTEN;
  --user/--password  requests without that Basic authorization get a 401
                   asking for it (so a client sends its credentials).
--elsewhere HOST:PORT serves the same registry on a second address (with
--cert/--key over TLS) as a storage a redirect points to.

Each request is logged to LOG as one line:
  SERVER METHOD PATH range=RANGE|- auth=yes|no
and each cut as:  cut PATH at SENT of TOTAL
"""
import argparse, base64, http.client, ssl, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--listen", required=True)
parser.add_argument("--upstream", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--cut-above", type=int)
parser.add_argument("--redirect")
parser.add_argument("--user")
parser.add_argument("--password")
parser.add_argument("--elsewhere")
parser.add_argument("--cert")
parser.add_argument("--key")
args = parser.parse_args()
if args.redirect == "self":
    args.redirect = "http://" + args.listen

lock = threading.Lock()
cut_done = set()
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "authorization"}


def log(line):
    with lock, open(args.log, "a") as out:
        out.write(line + "\n")


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def fetch(handler):
    """The upstream's answer to the handler's request: status, headers, body."""
    connection = http.client.HTTPConnection(*address(args.upstream), timeout=60)
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP}
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else None
    connection.request(handler.command, handler.path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.getheaders(), data


def make_handler(server_name, faults):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_any(self):
            auth = self.headers.get("Authorization")
            log(f"{server_name} {self.command} {self.path} "
                f"range={self.headers.get('Range') or '-'} auth={'yes' if auth else 'no'}")
            is_blob = "/blobs/sha256:" in self.path and "/uploads/" not in self.path
            if faults and args.user:
                expected = "Basic " + base64.b64encode(
                    f"{args.user}:{args.password}".encode()).decode()
                if auth != expected:
                    return self.answer(401, [("WWW-Authenticate", 'Basic realm="proxy"'),
                                             ("Content-Type", "application/json")],
                                       b'{"errors":[{"code":"UNAUTHORIZED","message":"log in"}]}')
            if (faults and args.redirect and self.command == "GET" and is_blob
                    and "redirected=1" not in self.path):
                location = args.redirect + self.path + "?redirected=1"
                return self.answer(307, [("Location", location)], b"")
            status, headers, data = fetch(self)
            if (faults and args.cut_above is not None and self.command == "GET" and is_blob
                    and status == 200 and len(data) > args.cut_above):
                with lock:
                    first = self.path not in cut_done
                    cut_done.add(self.path)
                if first:
                    sent = len(data) // 2
                    log(f"cut {self.path} at {sent} of {len(data)}")
                    self.answer(status, headers, data, send=sent)
                    self.close_connection = True
                    return
            self.answer(status, headers, data)

        def answer(self, status, headers, data, send=None):
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            upstream_length = dict((k.lower(), v) for k, v in headers).get("content-length")
            length = upstream_length if self.command == "HEAD" and upstream_length else len(data)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data if send is None else data[:send])
            self.wfile.flush()

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        def log_message(self, *_):
            pass

    return Handler


servers = [ThreadingHTTPServer(address(args.listen), make_handler("registry", True))]
if args.elsewhere:
    elsewhere = ThreadingHTTPServer(address(args.elsewhere), make_handler("elsewhere", False))
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        elsewhere.socket = context.wrap_socket(elsewhere.socket, server_side=True)
    servers.append(elsewhere)
for server in servers[1:]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[0].serve_forever()
