"""A TLS peer on CPython's ssl module, for FastStreams' interoperability tests.

Arguments are key=value pairs:
  role=client|server  port=N (client)  version=TLSv1|TLSv1_1|TLSv1_2|TLSv1_3  cipher=OPENSSL-NAME (TLS 1.2)
  ca=PEM (verify the peer against it)  cert=PEM key=PEM (our identity)  alpn=a,b
  bytes=N (client: how many bytes to send and expect back)  connections=N (resumption: N in a row)
  legacy=1 (allow TLS 1.0/1.1 at security level 0)
A server prints "PORT n" once it listens. Each connection prints one "RESULT<TAB>key=value<TAB>..." line; a failed
handshake or transfer reports "error" and the exception's text instead of crashing.
"""
import random, socket, ssl, sys

opts = dict(arg.split("=", 1) for arg in sys.argv[1:])
role = opts["role"]


def report(**fields):
    """One line: RESULT, then key=value fields separated by tabs."""
    text = "\t".join("%s=%s" % (k, str(v).replace("\t", " ").replace("\n", " ")) for k, v in fields.items())
    print("RESULT\t" + text, flush=True)


def context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT if role == "client" else ssl.PROTOCOL_TLS_SERVER)
    if "version" in opts:
        ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, opts["version"])
    if opts.get("legacy") == "1":
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if "cipher" in opts:
        ctx.set_ciphers(opts["cipher"])
    if "ca" in opts:
        ctx.load_verify_locations(opts["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
    elif role == "client":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if "cert" in opts:
        ctx.load_cert_chain(opts["cert"], opts["key"])
    if "alpn" in opts:
        ctx.set_alpn_protocols(opts["alpn"].split(","))
    # Counts the TLS 1.3 KeyUpdate messages the peer sends (CPython's debugging hook; it sees
    # every handshake message, including post-handshake ones).
    def count_key_updates(conn, direction, version, content_type, msg_type, data):
        if direction == "read" and msg_type == ssl._TLSMessageType.KEY_UPDATE:
            received_key_updates[0] += 1
    ctx._msg_callback = count_key_updates
    return ctx


received_key_updates = [0]


def describe(s):
    peer = s.getpeercert() or {}
    subject = ",".join("%s=%s" % pair for rdn in peer.get("subject", ()) for pair in rdn)
    return dict(version=s.version(), cipher=s.cipher()[0], alpn=s.selected_alpn_protocol(),
                reused=s.session_reused, peer=subject)


def read_until_close_notify(s):
    """Reads what is left; True when it ended with close_notify, False on a bare TCP EOF."""
    extra = 0
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True, extra
            extra += len(chunk)
    except (ssl.SSLEOFError, ConnectionResetError):
        return False, extra


def client():
    ctx = context()
    n = int(opts.get("bytes", "65536"))
    session = None
    for _ in range(int(opts.get("connections", "1"))):
        data = random.Random(7).randbytes(n)
        try:
            with socket.create_connection(("127.0.0.1", int(opts["port"])), timeout=30) as raw:
                s = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False, session=session)
                s.sendall(data)
                got = bytearray()
                while len(got) < n:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                session = s.session  # after data: a TLS 1.3 ticket has arrived by now
                info = describe(s)
                # The server closes first (close_notify), then we answer with ours.
                clean, extra = read_until_close_notify(s)
                if clean:
                    s.unwrap()
                report(echo=bytes(got) == data, peerCloseNotify=clean, extra=extra, **info)
        except Exception as error:
            report(error=type(error).__name__, message=str(error))


def server():
    ctx = context()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        print("PORT %d" % listener.getsockname()[1], flush=True)
        for _ in range(int(opts.get("connections", "1"))):
            raw, _ = listener.accept()
            raw.settimeout(30)
            try:
                s = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
                info = describe(s)
                echoed = 0
                try:
                    while True:  # echo until the client's close_notify
                        chunk = s.recv(65536)
                        if not chunk:
                            clean = True
                            break
                        s.sendall(chunk)
                        echoed += len(chunk)
                except (ssl.SSLEOFError, ConnectionResetError):
                    clean = False
                if clean:
                    s.unwrap()
                report(echoed=echoed, peerCloseNotify=clean, keyUpdates=received_key_updates[0], **info)
                received_key_updates[0] = 0
            except Exception as error:
                report(error=type(error).__name__, message=str(error))
            finally:
                raw.close()


client() if role == "client" else server()
