import Metrics
import MetricsTestKit
import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The counters, read from the process's one test backend (SharedTestMetrics). Other suites
    /// run at the same time and count too: connection counts are compared as deltas, and bytes by
    /// looking for the one report only this test's connections make (byte counts nobody else uses).
    @Suite struct MetricsTests {
        @Test func aConnectionReportsItsBytesOnceWhenItCloses() async throws {
            let request = 123_457, answer = 54_323
            let accepted = SharedTestMetrics.total(FastStreamsMetrics.connectionsAccepted)
            let opened = SharedTestMetrics.total(FastStreamsMetrics.connectionsOpened)
            let closed = SharedTestMetrics.total(FastStreamsMetrics.connectionsClosed)
            try await withServer(handler: { connection in
                _ = try await connection.reader.read(exactly: request)
                try connection.writer.write(randomBytes(answer, seed: 2))
            }) { server in
                try await withConnection(to: server) { connection in
                    try connection.writer.write(randomBytes(request, seed: 1))
                    #expect(try await readToEOF(connection.reader).count == answer)
                }
                // The server's side closes once its handler returned: both reports are in then.
                try await waitUntil("both ends reported their bytes") {
                    let read = SharedTestMetrics.increments(FastStreamsMetrics.bytesRead)
                    let written = SharedTestMetrics.increments(FastStreamsMetrics.bytesWritten)
                    return read.contains(Int64(request)) && read.contains(Int64(answer))
                        && written.contains(Int64(request)) && written.contains(Int64(answer))
                }
            }
            #expect(SharedTestMetrics.total(FastStreamsMetrics.connectionsAccepted) >= accepted + 1)
            #expect(SharedTestMetrics.total(FastStreamsMetrics.connectionsOpened) >= opened + 1)
            #expect(SharedTestMetrics.total(FastStreamsMetrics.connectionsClosed) >= closed + 2)
        }

        @Test func bytesStillQueuedWhenAConnectionIsAbortedAreNotCountedAsWritten() async throws {
            let total = 8 * 1024 * 1024 + 13  // more than the socket buffers hold
            let gate = Gate()
            try await withServer(handler: { _ in
                await gate.wait()  // reads nothing: the client's queue stays full
            }) { server in
                defer { gate.open() }
                let connection = try await connect(to: server)
                try connection.writer.write(randomBytes(total, seed: 3))
                // Aborted on the loop in the same step that reads the queue, so the count is exact.
                let dropped = await connection.inspect { stream in
                    let queued = stream.outbound.count
                    stream.abort(reason: StreamError.closed)
                    return queued
                }
                #expect(dropped > 0)
                try await waitUntil("the client reported the bytes it sent") {
                    SharedTestMetrics.increments(FastStreamsMetrics.bytesWritten).contains(Int64(total - dropped))
                }
            }
        }
    }
}
