import FastStreams
import Logging
import Synchronization

/// The people connected, by id, and what goes to them. Members live on different loops; the room
/// is shared by all of them behind a lock, held only to read or change who is here, never while
/// writing.
///
/// Sending never waits: a line goes to a member's writer, which sends at once or queues it. A
/// member whose queue would grow past `maxQueuedBytes` (the client does not read fast enough,
/// or at all) is dropped, so a slow client never holds up the others or grows without bound.
final class ChatRoom: Sendable {
    private struct Member {
        let connection: Connection
        var nick: String
        var metadata: Logger.Metadata { ["peer": "\(connection.remoteAddress?.description ?? "?")", "nick": "\(nick)"] }
    }

    private struct State {
        var members: [Int: Member] = [:]
        var nextID = 1
        /// The server is stopping: nobody is announced as leaving any more.
        var closing = false
    }

    private let state = Mutex(State())
    /// The most bytes a member may have queued, not yet taken by its socket.
    let maxQueuedBytes: Int
    let logger: Logger

    init(maxQueuedBytes: Int, logger: Logger) {
        self.maxQueuedBytes = maxQueuedBytes
        self.logger = logger
    }

    /// Adds `connection` as `guest<id>`, welcomes it and tells the others; returns its id.
    func join(_ connection: Connection) -> Int {
        let (id, nick, count) = state.withLock { state in
            defer { state.nextID += 1 }
            let member = Member(connection: connection, nick: "guest\(state.nextID)")
            state.members[state.nextID] = member
            return (state.nextID, member.nick, state.members.count)
        }
        logger.info("joined", metadata: ["peer": "\(connection.remoteAddress?.description ?? "?")", "nick": "\(nick)"])
        send("* welcome, \(nick): /nick NAME renames you, /who lists who is here, /quit leaves; \(count - 1) others here\n", to: id)
        broadcast("* \(nick) joined\n", except: id)
        return id
    }

    /// Removes member `id` (if it was not dropped already) and tells the others.
    func leave(_ id: Int) {
        let (member, closing) = state.withLock { ($0.members.removeValue(forKey: id), $0.closing) }
        guard let member else { return }
        logger.info("left", metadata: member.metadata)
        if !closing { broadcast("* \(member.nick) left\n", except: nil) }
    }

    /// Sends `text` from member `id` to everyone else, behind its nick.
    func say(_ text: String, from id: Int) {
        guard let nick = state.withLock({ $0.members[id]?.nick }) else { return }
        logger.trace("line", metadata: ["nick": "\(nick)", "bytes": "\(text.utf8.count)"])
        broadcast("<\(nick)> \(text)\n", except: id)
    }

    /// Renames member `id`: a nick is 1 to 24 letters, digits, `_` or `-`, and unique
    /// (ignoring case). Tells the member, and the others when it worked.
    func rename(_ id: Int, to nick: String) {
        let valid = (1...24).contains(nick.count) && nick.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
        guard valid else {
            return send("* a nick is 1 to 24 letters, digits, _ or -\n", to: id)
        }
        let old: String? = state.withLock { state in
            guard let member = state.members[id],
                  !state.members.contains(where: { $0.key != id && $0.value.nick.lowercased() == nick.lowercased() })
            else { return nil }
            state.members[id]!.nick = nick
            return member.nick
        }
        guard let old else { return send("* \(nick) is taken\n", to: id) }
        logger.info("renamed", metadata: ["old": "\(old)", "nick": "\(nick)"])
        send("* you are now \(nick)\n", to: id)
        broadcast("* \(old) is now \(nick)\n", except: id)
    }

    /// Tells member `id` who is here.
    func who(_ id: Int) {
        let nicks = state.withLock { $0.members.values.map(\.nick) }.sorted()
        send("* here: \(nicks.joined(separator: ", "))\n", to: id)
    }

    /// The server is stopping: tells everyone, and from now on nobody is announced as leaving.
    func close() {
        state.withLock { $0.closing = true }
        broadcast("* the server is shutting down\n", except: nil)
    }

    /// Sends `line` to member `id` only.
    func send(_ line: String, to id: Int) {
        guard let member = state.withLock({ $0.members[id] }) else { return }
        deliver(Chunk(line), to: [(id, member)])
    }

    /// Sends `line` to every member but `sender`.
    func broadcast(_ line: String, except sender: Int?) {
        let recipients = state.withLock { $0.members.filter { $0.key != sender } }
        deliver(Chunk(line), to: recipients.map { ($0.key, $0.value) })
    }

    /// Queues `line` (one buffer, shared by every recipient's queue) for each recipient whose
    /// queue has room, and drops the others.
    private func deliver(_ line: Chunk, to recipients: [(id: Int, member: Member)]) {
        var slow: [Int] = []
        for (id, member) in recipients {
            let writer = member.connection.writer
            guard writer.bufferedBytes + line.count <= maxQueuedBytes else {
                slow.append(id)
                continue
            }
            // A failed write means that connection is ending: its own session sees it and leaves.
            try? writer.write(line)
        }
        for id in slow { drop(id) }
    }

    /// Disconnects member `id`, whose client does not read what is sent to it.
    private func drop(_ id: Int) {
        guard let member = state.withLock({ $0.members.removeValue(forKey: id) }) else { return }
        var metadata = member.metadata
        metadata["queued_bytes"] = "\(member.connection.writer.bufferedBytes)"
        logger.notice("dropped a client that does not read", metadata: metadata)
        // Its queue is full: nothing more can reach it. The reset ends its session's read.
        member.connection.abort()
        broadcast("* \(member.nick) was dropped: not reading\n", except: nil)
    }
}
