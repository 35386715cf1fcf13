"""A TLS peer on tlslite-ng (pure Python TLS), for FastStreams' interoperability tests.

Arguments are key=value pairs, as for python_ssl_peer.py, plus:
  pin=PEM (client: accept only this server certificate; tlslite-ng checks no chains)
  requireClient=PEM (server: ask for a client certificate and accept only this one)
  keyUpdate=1 (client, TLS 1.3: after the first echo, send a KeyUpdate asking the peer to update
  too, then echo the same bytes again)
cipher= takes tlslite names (aes128gcm, chacha20-poly1305); version= takes TLSv1..TLSv1_3.
"""
import hashlib, random, socket, ssl, sys
from tlslite.api import (Checker, HandshakeSettings, SessionCache, TLSConnection, X509CertChain,
                         parsePEMKey)
from tlslite.constants import KeyUpdateMessageType
from tlslite.errors import TLSAbruptCloseError

opts = dict(arg.split("=", 1) for arg in sys.argv[1:])
role = opts["role"]
VERSIONS = {"TLSv1": (3, 1), "TLSv1_1": (3, 2), "TLSv1_2": (3, 3), "TLSv1_3": (3, 4)}
NAMES = {v: k.replace("_", ".") for k, v in VERSIONS.items()}


def report(**fields):
    """One line: RESULT, then key=value fields separated by tabs."""
    text = "\t".join("%s=%s" % (k, str(v).replace("\t", " ").replace("\n", " ")) for k, v in fields.items())
    print("RESULT\t" + text, flush=True)


def fingerprint(path):
    return hashlib.sha1(ssl.PEM_cert_to_DER_cert(open(path).read())).hexdigest()


def settings():
    s = HandshakeSettings()
    if "version" in opts:
        s.minVersion = s.maxVersion = VERSIONS[opts["version"]]
    if "cipher" in opts:
        s.cipherNames = [opts["cipher"]]
    if role == "server":
        s.ticketKeys = [bytes(random.Random(3).randbytes(32))]
    return s


def identity():
    if "cert" not in opts:
        return None, None
    chain = X509CertChain()
    chain.parsePemList(open(opts["cert"]).read())
    return chain, parsePEMKey(open(opts["key"]).read(), private=True)


def alpn():
    return [p.encode() for p in opts["alpn"].split(",")] if "alpn" in opts else None


def describe(conn):
    return dict(version=NAMES.get(tuple(conn.version), str(conn.version)), cipher=conn.getCipherName(),
                alpn=conn.session.appProto.decode() if conn.session and conn.session.appProto else None, reused=bool(conn.resumed))


def read_exactly(conn, n):
    got = bytearray()
    while len(got) < n:
        chunk = conn.read(max=n - len(got))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def read_until_close_notify(conn):
    try:
        extra = 0
        while True:
            chunk = conn.read()
            if not chunk:
                return True, extra
            extra += len(chunk)
    except (TLSAbruptCloseError, ConnectionResetError):
        return False, extra


def client():
    chain, key = identity()
    checker = Checker(x509Fingerprint=fingerprint(opts["pin"])) if "pin" in opts else None
    n = int(opts.get("bytes", "65536"))
    session = None
    for _ in range(int(opts.get("connections", "1"))):
        data = random.Random(7).randbytes(n)
        try:
            sock = socket.create_connection(("127.0.0.1", int(opts["port"])), timeout=30)
            conn = TLSConnection(sock)
            conn.handshakeClientCert(chain, key, session=session, settings=settings(), checker=checker,
                                     serverName="localhost", alpn=alpn())
            conn.write(data)
            ok = read_exactly(conn, n) == data
            if opts.get("keyUpdate") == "1":
                for _ in conn.send_keyupdate_request(KeyUpdateMessageType.update_requested):
                    pass
                conn.write(data)
                ok = ok and read_exactly(conn, n) == data
            info = describe(conn)
            session = conn.session
            clean, extra = read_until_close_notify(conn)
            conn.close()
            report(echo=ok, peerCloseNotify=clean, extra=extra, **info)
        except Exception as error:
            report(error=type(error).__name__, message=str(error))


def server():
    chain, key = identity()
    cache = SessionCache()
    listener = socket.create_server(("127.0.0.1", 0))
    print("PORT %d" % listener.getsockname()[1], flush=True)
    for _ in range(int(opts.get("connections", "1"))):
        raw, _ = listener.accept()
        raw.settimeout(30)
        try:
            conn = TLSConnection(raw)
            conn.handshakeServer(certChain=chain, privateKey=key, settings=settings(), sessionCache=cache,
                                 alpn=alpn(), reqCert="requireClient" in opts)
            info = describe(conn)
            if "requireClient" in opts:
                sent = conn.session.clientCertChain
                info["peer"] = "expected" if sent and sent.getFingerprint() == fingerprint(opts["requireClient"]) else "other"
            echoed = 0
            try:
                while True:  # echo until the client's close_notify
                    chunk = conn.read()
                    if not chunk:
                        clean = True
                        break
                    conn.write(chunk)
                    echoed += len(chunk)
            except (TLSAbruptCloseError, ConnectionResetError):
                clean = False
            conn.close()
            report(echoed=echoed, peerCloseNotify=clean, **info)
        except Exception as error:
            report(error=type(error).__name__, message=str(error))
        finally:
            raw.close()


client() if role == "client" else server()
