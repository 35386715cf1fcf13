import FastStreams
import Glibc
import HTTPCore

// The server's whole lifecycle in one place, in the pattern Examples/EchoServer uses today
// (signal handlers write to a pipe that a thread of its own reads). When `Server` becomes a
// swift-service-lifecycle `Service`, this file is replaced by a `ServiceGroup` run with
// `gracefulShutdownSignals: [.sigterm, .sigint]`, and `shutdown.trigger()` moves to the
// graceful-shutdown handler.

/// Catches SIGINT and SIGTERM from now on, so a signal sent right after `listening on` is not lost.
func catchStopSignals() -> SignalCatcher {
    SignalCatcher([SIGINT, SIGTERM])
}

/// Waits for SIGINT or SIGTERM, then stops `server`: idle connections close at once (`shutdown`),
/// answers under way get `grace` to finish.
func runUntilSignal(_ server: Server, signals: SignalCatcher, shutdown: ShutdownNotice, grace: Duration = .seconds(5)) async {
    let signal = await signals.wait()
    print("received signal \(signal), closing")
    fflush(nil)
    shutdown.trigger()
    await server.close(deadline: grace)
}
