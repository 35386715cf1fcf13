import FastStreams
import Logging

/// One client, from joining to leaving: reads lines (at most `maxLineBytes` each) and acts on
/// them, until the client quits or goes away, sends a line too long, stays silent for the read
/// timeout, or is dropped as too slow.
struct ChatSession {
    let connection: Connection
    let room: ChatRoom
    let maxLineBytes: Int
    let idleTimeout: Duration

    func run() async {
        let id = room.join(connection)
        let lastWords = await chat(as: id)
        room.leave(id)
        if let lastWords { await sayGoodbye(lastWords) }
    }

    /// Reads and acts on lines until the client is done; returns what to tell it last, if
    /// anything can still reach it.
    private func chat(as id: Int) async -> String? {
        do {
            for try await line in connection.reader.lines(limit: maxLineBytes) {
                guard handle(line, from: id) else { return "* bye\n" }
            }
            return nil  // the client closed
        } catch StreamError.limitExceeded(let limit) {
            room.logger.notice("line too long", metadata: metadata(limit: limit))
            return "* that line is longer than \(limit) bytes: disconnecting\n"
        } catch StreamError.readTimedOut {
            room.logger.info("silent too long", metadata: metadata())
            return "* nothing from you for \(idleTimeout): disconnecting\n"
        } catch {
            // Reset by the client, dropped as too slow, or no traffic either way for too long.
            room.logger.debug("connection ended", metadata: metadata(error: error))
            return nil
        }
    }

    /// Acts on one line; false when the client asked to leave.
    private func handle(_ line: String, from id: Int) -> Bool {
        // Control characters (escape sequences, carriage returns) are not passed on.
        let text = String(line.unicodeScalars.filter { $0 == "\t" || $0.properties.generalCategory != .control })
        guard text.hasPrefix("/") else {
            if !text.isEmpty { room.say(text, from: id) }
            return true
        }
        let words = text.split(separator: " ").map(String.init)
        switch words[0] {
        case "/nick" where words.count == 2: room.rename(id, to: words[1])
        case "/who": room.who(id)
        case "/quit": return false
        default: room.send("* commands: /nick NAME, /who, /quit\n", to: id)
        }
        return true
    }

    /// Sends a last line and ends the connection gently: FIN once the line is out, then what the
    /// client still sends is read and dropped until it closes its side (or for the read timeout,
    /// or 1 MiB). Closing with unread input would make the kernel reset the connection, and the
    /// reset can overtake the line.
    private func sayGoodbye(_ line: String) async {
        let writer = connection.writer
        try? writer.write(line)
        writer.finish()
        var budget = 1 << 20
        while budget > 0, let chunk = try? await connection.reader.read() {
            budget -= chunk.count
        }
    }

    private func metadata(limit: Int? = nil, error: (any Error)? = nil) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["peer": "\(connection.remoteAddress?.description ?? "?")"]
        if let limit { metadata["limit"] = "\(limit)" }
        if let error { metadata["error"] = "\(error)" }
        return metadata
    }
}
