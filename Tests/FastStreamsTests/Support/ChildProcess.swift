import Glibc
import Testing

/// A child process started with `posix_spawn` (no Foundation, so no process-wide helper threads
/// or descriptors that would look like leaks), its stdout on a socket pair, its stderr in a scratch
/// file.
final class ChildProcess {
    let pid: pid_t
    private var stdoutFD: Int32
    /// The write end of the child's stdin when it was asked for (else the child inherits ours).
    private var stdinFD: Int32 = -1
    private let stderrPath: String
    private var output: [UInt8] = []
    private var exitStatus: Int32?

    /// The `EchoServer` executable, built next to the test bundle (the test target depends on it).
    static var echoServerPath: String { executablePath("EchoServer") }

    /// An executable product of this package, built next to the test bundle.
    static func executablePath(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(decoding: buffer[..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory + "/" + name
    }

    /// Runs `script` with `/bin/sh -c`; `arguments` become `$0`, `$1`, ... With `stdin`, the
    /// child reads what ``writeStdin(_:)`` writes, until ``closeStdin()``.
    init(shell script: String, arguments: [String], stdin: Bool = false) throws {
        // A socket pair rather than a pipe: Glibc exports no pipe2, and the descriptors must be
        // close-on-exec from birth so children spawned by parallel tests cannot inherit them.
        var pipeFDs: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pipeFDs) == 0 else {
            throw TestFailure("socketpair: errno \(errno)")
        }
        var stdinFDs: [Int32] = [-1, -1]
        if stdin, socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &stdinFDs) != 0 {
            close(pipeFDs[0])
            close(pipeFDs[1])
            throw TestFailure("socketpair: errno \(errno)")
        }
        stderrPath = temporaryPath("stderr")

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        if stdin {
            posix_spawn_file_actions_adddup2(&actions, stdinFDs[1], 0)
        }
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        // A clean signal state: the test runner's mask and dispositions are not the server's.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = (["/bin/sh", "-c", script] + arguments).map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ)
        close(pipeFDs[1])
        if stdin {
            close(stdinFDs[1])
            shutdown(stdinFDs[0], Int32(SHUT_RD))
        }
        guard rc == 0 else {
            close(pipeFDs[0])
            if stdin { close(stdinFDs[0]) }
            throw TestFailure("posix_spawn: \(rc)")
        }
        self.pid = pid
        stdoutFD = pipeFDs[0]
        stdinFD = stdinFDs[0]
        _ = fcntl(stdoutFD, F_SETFL, fcntl(stdoutFD, F_GETFL) | O_NONBLOCK)
    }

    /// Starts `EchoServer` with `arguments`, under `ulimit -n <openFiles>` when given.
    static func echoServer(_ arguments: [String], openFiles: Int? = nil) throws -> ChildProcess {
        let limit = openFiles.map { "ulimit -n \($0) || exit 97; " } ?? ""
        return try ChildProcess(shell: limit + "exec \"$0\" \"$@\"", arguments: [echoServerPath] + arguments)
    }

    /// Starts the example executable `name` (a product of this package) with `arguments`.
    static func example(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        try ChildProcess(shell: #"exec "$0" "$@""#, arguments: [executablePath(name)] + arguments)
    }

    /// Everything the child wrote to stdout so far.
    var stdout: String {
        drainStdout()
        return String(decoding: output, as: UTF8.self)
    }

    /// The tail of the child's stderr (for failure messages).
    var stderrTail: String {
        guard let file = fopen(stderrPath, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        return String(decoding: bytes.suffix(2000), as: UTF8.self)
    }

    private func drainStdout() {
        guard stdoutFD >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(stdoutFD, &buffer, buffer.count)
            if n <= 0 { break }
            output += buffer[..<n]
        }
    }

    /// Waits (polling, up to `timeout`) for a stdout line starting with `prefix`; returns the
    /// rest of that line.
    func waitForLine(startingWith prefix: String, timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout.scaled
        while true {
            for line in stdout.split(separator: "\n") where line.hasPrefix(prefix) {
                return String(line.dropFirst(prefix.count))
            }
            guard ContinuousClock.now < deadline, isRunning else {
                Issue.record("no line starting with \"\(prefix)\"; stdout: \(stdout) stderr: \(stderrTail)")
                throw TestFailure("child output")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits for EchoServer's `listening on HOST:PORT` and returns the port.
    func listeningPort() async throws -> Int {
        let address = try await waitForLine(startingWith: "listening on ")
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw TestFailure("cannot parse \"\(address)\"")
        }
        return port
    }

    /// True until the child has exited (reaping it if it did).
    var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { exitStatus = status }
        return r == 0
    }

    /// User plus system CPU time of the child so far, from /proc/PID/stat.
    func cpuSeconds() -> Double? {
        guard let file = fopen("/proc/\(pid)/stat", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 2048)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        guard let close = line.lastIndex(of: ")") else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Writes `text` to the child's stdin (started with `stdin: true`); blocks until it is taken.
    func writeStdin(_ text: String) throws {
        guard stdinFD >= 0 else { throw TestFailure("the child's stdin is not ours, or is closed") }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(stdinFD, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TestFailure("writing the child's stdin: errno \(errno)") }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Ends the child's stdin (EOF).
    func closeStdin() {
        if stdinFD >= 0 {
            close(stdinFD)
            stdinFD = -1
        }
    }

    func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits (polling) up to `timeout` for the child to exit; returns its exit code, or nil if it
    /// is still running or was killed by a signal.
    func waitForExit(timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout.scaled
        while isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let status = exitStatus else { return nil }
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : nil
    }

    /// Kills the child if needed, reaps it, and releases the pipe and the scratch file.
    func terminate() {
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            exitStatus = status
        }
        closeStdin()
        if stdoutFD >= 0 {
            close(stdoutFD)
            stdoutFD = -1
        }
        unlink(stderrPath)
    }

    deinit { terminate() }
}
