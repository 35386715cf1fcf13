import Metrics

extension SocketStream {
    /// The socket closed: one report of what the connection carried (nothing is reported per
    /// read or write).
    func reportClosed() {
        ConnectionCounters.closed.increment()
        if bytesRead > 0 { ConnectionCounters.bytesRead.increment(by: Int64(clamping: bytesRead)) }
        if bytesWritten > 0 { ConnectionCounters.bytesWritten.increment(by: Int64(clamping: bytesWritten)) }
    }
}
