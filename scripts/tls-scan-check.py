"""Reads sslyze's JSON results (argv[1]) and fails on anything weak or insecure it found.

sslyze's own --mozilla_config=intermediate check (run by tls-scan.sh) covers protocol versions,
cipher suites, curves and the certificate; this adds the vulnerability scans it only reports, and
states each check so the CI log shows what was verified.
"""
import json
import sys

results = json.load(open(sys.argv[1]))
failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    print("    %s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


for server in results["server_scan_results"]:
    location = server["server_location"]
    print("  %s:%s" % (location["hostname"], location["port"]))
    if server["scan_status"] != "COMPLETED":
        check(False, "scan: %s" % server["scan_status"])
        continue
    scan = server["scan_result"]

    def result(name):
        attempt = scan[name]
        if attempt["status"] != "COMPLETED":
            check(False, "%s scan: %s %s" % (name, attempt["status"], attempt.get("error_reason") or ""))
            sys.exit(1)
        return attempt["result"]

    for old in ["ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"]:
        accepted = result(old + "_cipher_suites")["accepted_cipher_suites"]
        check(not accepted, "%s refused (accepted: %s)" % (old, [s["cipher_suite"]["name"] for s in accepted]))
    tls12 = [s["cipher_suite"]["name"] for s in result("tls_1_2_cipher_suites")["accepted_cipher_suites"]]
    tls13 = [s["cipher_suite"]["name"] for s in result("tls_1_3_cipher_suites")["accepted_cipher_suites"]]
    check(bool(tls13), "TLS 1.3 offered: %s" % tls13)
    check(all(s.startswith("TLS_ECDHE_") for s in tls12), "TLS 1.2: forward secrecy (ECDHE) only: %s" % tls12)
    check(not any("_CBC_" in s or "_RC4_" in s or "_3DES_" in s or "_NULL_" in s for s in tls12),
          "TLS 1.2: AEAD only, no CBC/RC4/3DES/NULL")
    check(not any(s.startswith("TLS_RSA_") or "_DHE_" in s for s in tls12), "TLS 1.2: no static RSA, no finite-field DHE")
    curves = [c["name"] for c in result("elliptic_curves")["supported_curves"] or []]
    check(set(curves) <= {"X25519", "prime256v1", "secp256r1", "secp384r1"}, "curves X25519/P-256/P-384 only: %s" % curves)
    check(not result("heartbleed")["is_vulnerable_to_heartbleed"], "not vulnerable to Heartbleed")
    check(not result("openssl_ccs_injection")["is_vulnerable_to_ccs_injection"], "not vulnerable to CCS injection")
    robot = result("robot")["robot_result"]
    check(robot.startswith("NOT_VULNERABLE"), "ROBOT: %s" % robot)
    renegotiation = result("session_renegotiation")
    check(not renegotiation["is_vulnerable_to_client_renegotiation_dos"], "no client-initiated renegotiation")
    check(renegotiation["supports_secure_renegotiation"], "secure renegotiation (RFC 5746) signalled")
    check(not result("tls_compression")["supports_compression"], "no TLS compression (CRIME)")
    check(result("tls_fallback_scsv")["supports_fallback_scsv"], "TLS_FALLBACK_SCSV honoured")
    check(result("tls_extended_master_secret")["supports_ems_extension"], "extended master secret supported")
    check(not result("tls_1_3_early_data")["supports_early_data"], "no 0-RTT early data (replayable)")

print("  %d checks, %d failed" % (checks, len(failures)))
sys.exit(1 if failures else 0)
