import Testing
@testable import FastStreams

extension FastStreamsTests {
    /// `StreamOptions` keeps value semantics over its copy-on-write storage.
    @Suite struct StreamOptionsTests {
        @Test func aCopyIsIndependentOfTheOriginal() {
            var original = StreamOptions()
            original.readTimeout = .seconds(5)
            var copy = original
            copy.readTimeout = .seconds(9)
            copy.keepAlive = .init(idle: .seconds(30))
            copy.noDelay = false
            #expect(original.readTimeout == .seconds(5))
            #expect(original.keepAlive == nil)
            #expect(original.noDelay)
            #expect(copy.readTimeout == .seconds(9))
            #expect(copy.keepAlive == .init(idle: .seconds(30)))
            #expect(!copy.noDelay)
        }

        @Test func changingOneValueLeavesTheDefaultsAlone() {
            var changed = StreamOptions()
            changed.readBufferLimit = 1
            changed.writeHighWatermark = 2
            changed.writeLowWatermark = 1
            changed.sendBufferSize = 4096
            changed.receiveBufferSize = 8192
            changed.idleTimeout = .seconds(1)
            changed.linger = .zero
            let fresh = StreamOptions()
            #expect(fresh.readBufferLimit == 256 * 1024)
            #expect(fresh.writeHighWatermark == 64 * 1024 && fresh.writeLowWatermark == 16 * 1024)
            #expect(fresh.sendBufferSize == nil && fresh.receiveBufferSize == nil)
            #expect(fresh.idleTimeout == nil && fresh.linger == nil && fresh.readTimeout == nil)
            #expect(changed.readBufferLimit == 1 && changed.sendBufferSize == 4096 && changed.linger == .zero)
        }

        @Test func copiesSentToOtherTasksStayApart() async {
            var base = StreamOptions()
            base.readBufferLimit = 1000
            let results = await withTaskGroup(of: Int.self) { group in
                for i in 1...8 {
                    group.addTask { [base] in
                        var mine = base
                        mine.readBufferLimit += i
                        return mine.readBufferLimit
                    }
                }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(results.sorted() == Array(1001...1008))
            #expect(base.readBufferLimit == 1000)
        }
    }
}
