import Glibc
import Testing
import FastStreams
import FastStreamsTLS

/// An old protocol version a peer offers to check that we refuse it.
enum LegacyVersion: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case tls10, tls11

    var testDescription: String { self == .tls10 ? "TLS 1.0" : "TLS 1.1" }
    var openSSLFlag: String { self == .tls10 ? "-tls1" : "-tls1_1" }
    var pythonName: String { self == .tls10 ? "TLSv1" : "TLSv1_1" }
    var gnutlsPriority: String { "NORMAL:-VERS-ALL:+VERS-\(self == .tls10 ? "TLS1.0" : "TLS1.1"):%VERIFY_ALLOW_SIGN_WITH_SHA1" }
}

/// How a peer client is run against our server.
struct PeerClientPlan: Sendable {
    /// Pin the case's version and cipher on the peer's side too (nil: the peer offers its defaults).
    var pin: InteropCase?
    /// Offer only this old version (at the peer's lowest security level, so it really does).
    var legacy: LegacyVersion?
    /// Present this client certificate (its key is `client.key`).
    var clientCertificate: String?
    /// The server certificate a tlslite-ng client accepts (it pins; it does not check chains).
    var trustedServerCertificate = "server.pem"
    /// Connections in a row, each resuming the session of the one before.
    var connections = 1
    /// After the first echo, send a TLS 1.3 KeyUpdate (asking us to update too), then echo again.
    var keyUpdate = false
    /// Send data and expect it back (false: the handshake is expected to fail).
    var exchangesData = true
}

extension InteropPeer {
    /// The text the CLI clients send, and after a key update the same amount again.
    static let cliText = Interop.text(lines: 300, tag: "line")
    static let cliTextAfterKeyUpdate = Interop.text(lines: 300, tag: "more")
    static let binaryBytes = 65536

    /// Bytes our server echoes per connection before it closes first; nil when this peer's client
    /// closes first (gnutls-cli sends close_notify at the end of its input, but does not answer ours).
    func serverClosesAfter(_ plan: PeerClientPlan) -> Int? {
        let rounds = plan.keyUpdate ? 2 : 1
        switch self {
        case .openssl: return Self.cliText.utf8.count * rounds
        case .gnutls: return nil
        case .python, .tlslite: return Self.binaryBytes * rounds
        }
    }

    /// Runs this peer's client against our server on 127.0.0.1:`port`; one report per connection.
    func runClient(port: Int, certificates: TLSCertificates, plan: PeerClientPlan) async throws -> [PeerReport] {
        switch self {
        case .openssl: try await runOpenSSLClient(port: port, certificates, plan)
        case .gnutls: try await runGnuTLSClient(port: port, certificates, plan)
        case .python, .tlslite: try await runScriptClient(port: port, certificates, plan)
        }
    }

    private func runOpenSSLClient(port: Int, _ certificates: TLSCertificates, _ plan: PeerClientPlan) async throws -> [PeerReport] {
        // Neither -quiet nor -ign_eof: s_client then takes "K" on its input as "send a KeyUpdate
        // (update requested)", and prints "closed" when the server's close_notify arrives (after
        // which it sends its own).
        var base = ["-connect", "127.0.0.1:\(port)", "-servername", "localhost", "-verify_hostname", "localhost",
                    "-CAfile", certificates.caFile, "-verify_return_error", "-alpn", "\(Interop.alpn),http/1.1"]
        if let pin = plan.pin { base += pin.openSSLFlags }
        if let legacy = plan.legacy { base += [legacy.openSSLFlag, "-cipher", "DEFAULT:@SECLEVEL=0"] }
        if let certificate = plan.clientCertificate {
            base += ["-cert", certificates.path(certificate), "-key", certificates.path("client.key")]
        }
        let sessionFile = temporaryPath("s_client-session")
        defer { unlink(sessionFile) }
        var reports: [PeerReport] = []
        for index in 0..<plan.connections {
            var arguments = base
            if plan.connections > 1 { arguments += index == 0 ? ["-sess_out", sessionFile] : ["-sess_in", sessionFile] }
            let child = try ChildProcess(shell: #"exec openssl s_client "$@""#, arguments: ["openssl"] + arguments, stdin: true)
            defer { child.terminate() }
            var echoed = false
            if plan.exchangesData {
                try child.writeStdin(Self.cliText)
                echoed = try await child.waitForOutput(containing: Self.cliText)
                if echoed && plan.keyUpdate {
                    // s_client takes a whole read of its input as the command: the text must
                    // come only after it printed that it sent the KeyUpdate.
                    try child.writeStdin("K\n")
                    let sent = try await child.waitForOutput(containing: "KEYUPDATE", onStderr: true)
                    #expect(sent, "s_client said it sent a KeyUpdate: \(child.stderrTail)")
                    try child.writeStdin(Self.cliTextAfterKeyUpdate)
                    echoed = try await child.waitForOutput(containing: Self.cliTextAfterKeyUpdate) && sent
                }
            }
            let status = try await child.finish("openssl s_client")
            let lines = child.stdout.split(separator: "\n")
            var report = PeerReport()
            // "New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256" (or "Reused, ...").
            if let summary = lines.last(where: { $0.hasPrefix("New, ") || $0.hasPrefix("Reused, ") }) {
                let parts = summary.split(separator: ",").map { $0.trimmed() }
                report["version"] = parts.count > 1 ? parts[1] : nil
                report["cipher"] = summary.components(after: "Cipher is ")
                report["reused"] = summary.hasPrefix("Reused") ? "True" : "False"
            }
            report["alpn"] = lines.last { $0.hasPrefix("ALPN protocol: ") }.flatMap { $0.components(after: "ALPN protocol: ") }
            report["echo"] = echoed ? "True" : "False"
            report["peerCloseNotify"] = lines.contains("closed") ? "True" : "False"
            if status != 0 {
                report["error"] = "exit \(status.map(String.init) ?? "by signal")"
                report["message"] = child.stderrTail
            }
            reports.append(report)
        }
        return reports
    }

    private func runGnuTLSClient(port: Int, _ certificates: TLSCertificates, _ plan: PeerClientPlan) async throws -> [PeerReport] {
        var arguments = ["127.0.0.1", "-p", String(port), "--sni-hostname", "localhost", "--verify-hostname", "localhost",
                         "--x509cafile", certificates.caFile, "--alpn", Interop.alpn, "--alpn", "http/1.1"]
        if let pin = plan.pin { arguments += ["--priority", pin.gnutlsPriority] }
        if let legacy = plan.legacy { arguments += ["--priority", legacy.gnutlsPriority] }
        if let certificate = plan.clientCertificate {
            arguments += ["--x509certfile", certificates.path(certificate), "--x509keyfile", certificates.path("client.key")]
        }
        // --resume: one full handshake (closed at once), then a resumed one that carries the data.
        if plan.connections > 1 { arguments.append("--resume") }
        if plan.keyUpdate { arguments.append("--inline-commands") }
        // stdbuf: gnutls-cli writes what it receives with stdio, fully buffered on a socket.
        let child = try ChildProcess(shell: #"exec stdbuf -o0 gnutls-cli "$@""#, arguments: ["gnutls-cli"] + arguments, stdin: true)
        defer { child.terminate() }
        var echoed = false
        if plan.exchangesData {
            try child.writeStdin(Self.cliText)
            echoed = try await child.waitForOutput(containing: Self.cliText)
            if echoed && plan.keyUpdate {
                try child.writeStdin("^rekey^\n")  // gnutls_session_key_update(GNUTLS_KU_PEER)
                try child.writeStdin(Self.cliTextAfterKeyUpdate)
                echoed = try await child.waitForOutput(containing: Self.cliTextAfterKeyUpdate)
                    && child.stdout.contains("- Rekey was completed")
            }
        }
        child.closeStdin()  // gnutls-cli sends close_notify and exits
        let status = try await child.finish("gnutls-cli")
        let output = child.stdout + child.stderrTail
        let lines = output.split(separator: "\n")
        var report = PeerReport()
        // "- Description: (TLS1.3-X.509)-(ECDHE-SECP256R1)-(RSA-PSS-RSAE-SHA256)-(AES-128-GCM)"
        if let description = lines.last(where: { $0.hasPrefix("- Description: ") }) {
            report["version"] = description.contains("(TLS1.3") ? "TLSv1.3" : description.contains("(TLS1.2") ? "TLSv1.2" : String(description)
            report["cipher"] = description.split(separator: "-(").last.map(String.init)
        }
        report["alpn"] = lines.last { $0.hasPrefix("- Application protocol: ") }.flatMap { $0.components(after: "- Application protocol: ") }
        report["reused"] = output.contains("*** This is a resumed session") ? "True" : "False"
        report["echo"] = echoed ? "True" : "False"
        if status != 0 {
            report["error"] = "exit \(status.map(String.init) ?? "by signal")"
            report["message"] = String(output.suffix(1500))
        }
        return [report]
    }

    private func runScriptClient(port: Int, _ certificates: TLSCertificates, _ plan: PeerClientPlan) async throws -> [PeerReport] {
        var options = ["role": "client", "port": String(port), "alpn": "\(Interop.alpn),http/1.1",
                       "bytes": String(Self.binaryBytes), "connections": String(plan.connections)]
        let script: String
        if self == .python {
            script = "python_ssl_peer.py"
            options["ca"] = certificates.caFile
            if let pin = plan.pin {
                options["version"] = pin.version.pythonName
                if pin.version == .tls12 { options["cipher"] = pin.cipherName }
            }
            if let legacy = plan.legacy {
                options["version"] = legacy.pythonName
                options["legacy"] = "1"
            }
        } else {
            script = "tlslite_peer.py"
            options["pin"] = certificates.path(plan.trustedServerCertificate)
            if let pin = plan.pin {
                options["version"] = pin.version.pythonName
                options["cipher"] = pin.cipher.tlsliteName
            }
            if let legacy = plan.legacy { options["version"] = legacy.pythonName }
            if plan.keyUpdate { options["keyUpdate"] = "1" }
        }
        if let certificate = plan.clientCertificate {
            options["cert"] = certificates.path(certificate)
            options["key"] = certificates.path("client.key")
        }
        let child = try PeerScripts.run(script, options)
        defer { child.terminate() }
        let status = try await child.finish(script)
        #expect(status == 0, "\(script) crashed: \(child.stderrTail)")
        let reports = PeerReport.parse(child.stdout)
        #expect(reports.count == plan.connections, "\(script): \(child.stdout) \(child.stderrTail)")
        return reports
    }
}

extension Substring {
    /// The text after the first `marker`, if it occurs.
    func components(after marker: String) -> String? {
        guard let range = firstRange(of: marker) else { return nil }
        return String(self[range.upperBound...])
    }

    /// Without leading and trailing spaces.
    func trimmed() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
