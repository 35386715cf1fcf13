import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// The timeout bookkeeping, without sockets or clocks: ticks are driven by hand.
    @Suite struct StreamTimeoutsTests {
        /// A ticker with a period of 1 ms (timeouts of 4 ms and up).
        func timeouts(read: Int? = nil, idle: Int? = nil) throws -> StreamTimeouts {
            try #require(StreamTimeouts(read: read.map { .milliseconds($0) }, idle: idle.map { .milliseconds($0) }))
        }

        @Test func noTimeoutMeansNoTicker() {
            #expect(StreamTimeouts(read: nil, idle: nil) == nil)
        }

        @Test func thePeriodIsAQuarterOfTheShortestTimeout() throws {
            #expect(try timeouts(read: 8, idle: 40).period == 2_000_000)
            #expect(try timeouts(idle: 40).period == 10_000_000)
            #expect(try timeouts(read: 1).period == 1_000_000, "never below 1 ms")
        }

        @Test func aReadThatKeepsWaitingTimesOutAfterItsTimeout() throws {
            var t = try timeouts(read: 4)
            t.restart(readWait: 7)  // the ticker starts with this wait
            #expect(t.tick(readWait: 7, activity: 0) == .again)
            #expect(t.tick(readWait: 7, activity: 0) == .again)
            #expect(t.tick(readWait: 7, activity: 0) == .again)
            #expect(t.tick(readWait: 7, activity: 0) == .readTimedOut)
        }

        @Test func aNewWaitStartsCountingAfresh() throws {
            var t = try timeouts(read: 4)
            t.restart(readWait: 1)
            for _ in 0..<3 { #expect(t.tick(readWait: 1, activity: 0) == .again) }
            // Wait 1 ended and wait 2 began between two ticks: the next tick starts its count.
            #expect(t.tick(readWait: 2, activity: 0) == .again)
            for _ in 0..<3 { #expect(t.tick(readWait: 2, activity: 0) == .again) }
            #expect(t.tick(readWait: 2, activity: 0) == .readTimedOut)
        }

        @Test func withNoReadWaitingAndNoIdleTimeoutTheTickerStops() throws {
            var t = try timeouts(read: 4)
            #expect(t.tick(readWait: nil, activity: 0) == .stop)
            #expect(!t.ticksWhileNoReadWaits)
        }

        @Test func aQuietConnectionIsIdleAfterItsTimeout() throws {
            var t = try timeouts(idle: 4)
            #expect(t.ticksWhileNoReadWaits)
            for _ in 0..<3 { #expect(t.tick(readWait: nil, activity: 0) == .again) }
            #expect(t.tick(readWait: nil, activity: 0) == .idleTimedOut)
        }

        @Test func anyByteRestartsTheIdleCount() throws {
            var t = try timeouts(idle: 4)
            for _ in 0..<3 { #expect(t.tick(readWait: nil, activity: 0) == .again) }
            #expect(t.tick(readWait: nil, activity: 1) == .again, "a byte moved since the last tick")
            for _ in 0..<3 { #expect(t.tick(readWait: nil, activity: 1) == .again) }
            #expect(t.tick(readWait: nil, activity: 1) == .idleTimedOut)
        }

        @Test func aWaitingReadDoesNotCountAsActivity() throws {
            var t = try timeouts(read: 400, idle: 4)
            t.restart(readWait: 1)
            for _ in 0..<3 { #expect(t.tick(readWait: 1, activity: 0) == .again) }
            #expect(t.tick(readWait: 1, activity: 0) == .idleTimedOut)
        }

        @Test func aReadTimeoutLeavesTheIdleCountRunning() throws {
            var t = try timeouts(read: 4, idle: 8)  // period 1 ms
            t.restart(readWait: 1)
            for _ in 0..<3 { #expect(t.tick(readWait: 1, activity: 0) == .again) }
            #expect(t.tick(readWait: 1, activity: 0) == .readTimedOut)
            for _ in 0..<3 { #expect(t.tick(readWait: nil, activity: 0) == .again) }
            #expect(t.tick(readWait: nil, activity: 0) == .idleTimedOut)
        }
    }
}
