extension Reader {
    /// The received lines as an `AsyncSequence` of `String`s (see ``Reader/lines(limit:)``):
    /// each without its `\n` or `\r\n`, the last one even without a terminator; it ends at EOF.
    public struct Lines: AsyncSequence, Sendable {
        /// A line, without its terminator.
        public typealias Element = String
        /// Reads fail with ``StreamError`` (``StreamError/limitExceeded(limit:)`` for an
        /// over-long line) or `CancellationError`.
        public typealias Failure = any Error

        let reader: Reader
        let limit: Int

        /// The iterator: each `next()` reads one line, nil at EOF.
        public struct AsyncIterator: AsyncIteratorProtocol {
            let reader: Reader
            let limit: Int

            /// The next line, or nil once the input ended.
            nonisolated(nonsending) public mutating func next() async throws -> String? {
                try await reader.readLine(limit: limit)
            }

            /// The next line, read on the caller's actor (the form `for try await` uses;
            /// nonsending, as ``Reader/AsyncIterator/next(isolation:)`` is).
            nonisolated(nonsending) public mutating func next(isolation actor: (any Actor)?) async throws -> String? {
                try await reader.readLine(limit: limit)
            }
        }

        /// An iterator over the lines.
        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(reader: reader, limit: limit) }
    }
}
