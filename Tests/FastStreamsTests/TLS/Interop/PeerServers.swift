import Glibc
import Testing
import FastStreams
import FastStreamsTLS

/// How a peer server is run for our client.
struct PeerServerPlan: Sendable {
    /// Pin the case's version and cipher, and present its key type (nil: defaults, RSA).
    var pin: InteropCase?
    /// Present this certificate instead (with the pinned key type's key).
    var certificate: String?
    /// Accept only this old version (at the peer's lowest security level).
    var legacy: LegacyVersion?
    /// Require a client certificate issued by the test CA (tlslite-ng: exactly `client.pem`).
    var requireClientCertificate = false
    /// Connections the server serves before it exits.
    var connections = 1
}

/// A peer's server process, listening on 127.0.0.1:`port`. `s_server` serves a file over HTTP
/// (`-WWW`) and closes first; the others echo until our close_notify and answer it.
struct PeerServer {
    let peer: InteropPeer
    let child: ChildProcess
    let port: Int
    /// `s_server -WWW`'s scratch directory, removed by ``stop()``.
    var directory: String? = nil

    /// The file `openssl s_server -WWW` serves (its working directory is a scratch one).
    static let servedPath = "/blob.txt"
    static let servedText = Interop.text(lines: 2000, tag: "file")

    /// Starts `peer`'s server; the caller terminates it (`stop`).
    static func start(_ peer: InteropPeer, _ certificates: TLSCertificates, _ plan: PeerServerPlan) async throws -> PeerServer {
        let key = plan.pin?.key ?? .rsa
        let certificate = certificates.path(plan.certificate ?? key.certificate)
        let privateKey = certificates.path(key.key)
        switch peer {
        case .openssl:
            var arguments = ["-cert", certificate, "-key", privateKey, "-WWW", "-http_server_binmode",
                             "-naccept", String(plan.connections), "-alpn", Interop.alpn]
            if let pin = plan.pin { arguments += pin.openSSLFlags }
            if let legacy = plan.legacy { arguments += [legacy.openSSLFlag, "-cipher", "DEFAULT:@SECLEVEL=0"] }
            if plan.requireClientCertificate { arguments += ["-Verify", "1", "-CAfile", certificates.caFile, "-verify_return_error"] }
            let directory = try wwwDirectory()
            let started: (ChildProcess, port: Int)
            do { started = try await startOpenSSLServer(in: directory, arguments) } catch {
                removeWWWDirectory(directory)
                throw error
            }
            let (child, port) = started
            return PeerServer(peer: peer, child: child, port: port, directory: directory)
        case .gnutls:
            var arguments = ["--echo", "--x509certfile", certificate, "--x509keyfile", privateKey, "--alpn", Interop.alpn]
            if let pin = plan.pin { arguments += ["--priority", pin.gnutlsPriority] }
            if let legacy = plan.legacy { arguments += ["--priority", legacy.gnutlsPriority] }
            if plan.requireClientCertificate {
                arguments += ["--require-client-cert", "--verify-client-cert", "--x509cafile", certificates.caFile]
            }
            return try await startGnuTLSServer(arguments)
        case .python, .tlslite:
            var options = ["role": "server", "cert": certificate, "key": privateKey, "alpn": Interop.alpn,
                           "connections": String(plan.connections)]
            if let pin = plan.pin {
                options["version"] = pin.version.pythonName
                if peer == .tlslite { options["cipher"] = pin.cipher.tlsliteName }
                else if pin.version == .tls12 { options["cipher"] = pin.cipherName }
            }
            if let legacy = plan.legacy {
                options["version"] = legacy.pythonName
                if peer == .python { options["legacy"] = "1" }
            }
            if plan.requireClientCertificate {
                if peer == .python { options["ca"] = certificates.caFile }
                else { options["requireClient"] = certificates.path("client.pem") }
            }
            let child = try PeerScripts.run(peer == .python ? "python_ssl_peer.py" : "tlslite_peer.py", options)
            guard let port = try await child.lineIfRunning(startingWith: "PORT ").flatMap({ Int($0) }) else {
                Issue.record("\(peer) server did not start: \(child.stderrTail)")
                child.terminate()
                throw TestFailure("peer server")
            }
            return PeerServer(peer: peer, child: child, port: port)
        }
    }

    /// The connection reports of the Python peers (waits, bounded, for `count` of them).
    func reports(_ count: Int) async throws -> [PeerReport] {
        let deadline = ContinuousClock.now + Interop.processTimeout
        while PeerReport.parse(child.stdout).count < count, child.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let reports = PeerReport.parse(child.stdout)
        #expect(reports.count >= count, "\(peer) server reported \(reports.count) of \(count): \(child.stdout) \(child.stderrTail)")
        return reports
    }

    /// Everything the server printed (for the CLI servers' own view and failure messages).
    var output: String { child.stdout + "\n" + child.stderrTail }

    /// Kills the server (if still running) and removes its scratch directory.
    func stop() {
        child.terminate()
        if let directory { Self.removeWWWDirectory(directory) }
    }

    /// A scratch directory holding ``servedText`` for `s_server -WWW`.
    private static func wwwDirectory() throws -> String {
        let directory = temporaryPath("www")
        guard mkdir(directory, 0o700) == 0 else { throw TestFailure("mkdir \(directory): errno \(errno)") }
        do { try writeFile(directory + servedPath, Array(servedText.utf8)) } catch {
            rmdir(directory)
            throw error
        }
        return directory
    }

    private static func removeWWWDirectory(_ directory: String) {
        unlink(directory + servedPath)
        rmdir(directory)
    }

    /// `gnutls-serv` on a free port (it cannot report a port it chose): retried when the port was
    /// taken meanwhile.
    private static func startGnuTLSServer(_ arguments: [String]) async throws -> PeerServer {
        for _ in 0..<5 {
            let port = try unusedPort()
            let child = try ChildProcess(shell: #"exec gnutls-serv "$@""#, arguments: ["gnutls-serv", "-p", String(port)] + arguments)
            // It says so on stderr: "Echo Server listening on IPv4 0.0.0.0 port N...", then
            // "done" once it listens.
            let ready = "IPv4 0.0.0.0 port \(port)...done"
            let deadline = ContinuousClock.now + Interop.processTimeout
            while child.isRunning, !child.stderrTail.contains(ready), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            if child.isRunning, child.stderrTail.contains(ready) {
                return PeerServer(peer: .gnutls, child: child, port: port)
            }
            let stderr = child.stderrTail
            child.terminate()
            guard stderr.contains("bind") || stderr.contains("in use") else {
                Issue.record("gnutls-serv did not start: \(stderr)")
                throw TestFailure("gnutls-serv")
            }
        }
        throw TestFailure("no free port for gnutls-serv after 5 tries")
    }
}
