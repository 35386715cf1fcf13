import Glibc
import SystemPackage

/// The served folder, opened once as a directory descriptor, and the only way to open a file in
/// it: each request path is walked one component at a time with `openat` and `O_NOFOLLOW`, so no
/// symbolic link is ever followed (not in the file's name, not in a folder on the way), and
/// nothing but a regular file is ever returned.
///
/// The calls here may block on a slow disk: run ``open(_:)`` on a ``BlockingPool``.
package struct ServedRoot: Sendable {
    /// The root directory (`O_RDONLY | O_DIRECTORY`), open for the life of the process.
    package let descriptor: Int32

    /// Opens `path` as the root. The root itself may be reached through links: the operator chose it.
    package init(path: String) throws(Errno) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        descriptor = fd
    }

    /// A regular file opened for reading, with its size at the time it was opened.
    package struct OpenedFile: Sendable {
        package let descriptor: FileDescriptor
        package let size: Int64
    }

    /// Why a path could not be served.
    package enum Failure: Error, Equatable, Sendable {
        /// Nothing there, a directory, or a file where a folder was expected: 404.
        case notFound
        /// A symbolic link, a FIFO, a device or socket, or no permission: 403.
        case forbidden
        /// Out of descriptors or memory: 503.
        case unavailable(Errno)
        /// Anything else: 500.
        case failed(Errno)
    }

    /// Opens the regular file at `path` below the root, following no symbolic link.
    ///
    /// Folders on the way are opened with `O_DIRECTORY | O_NOFOLLOW`. The file itself is first
    /// looked at with `fstatat(AT_SYMLINK_NOFOLLOW)`, so a FIFO or device is never opened at all,
    /// then opened with `O_NOFOLLOW | O_NONBLOCK` (should it have been swapped for a FIFO
    /// meanwhile, the open cannot block) and checked again with `fstat` on the open descriptor.
    package func open(_ path: RequestPath) -> Result<OpenedFile, Failure> {
        // A folder (the root, `/docs/`) is never served: no listings.
        guard !path.isFolder, let name = path.components.last else { return .failure(.notFound) }
        var folder = descriptor
        defer { if folder != descriptor { close(folder) } }
        for component in path.components.dropLast() {
            let next = Self.withCString(component) { openat(folder, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard next >= 0 else { return .failure(failure(errno: errno, at: folder, component)) }
            if folder != descriptor { close(folder) }
            folder = next
        }
        return Self.withCString(name) { name -> Result<OpenedFile, Failure> in
            var info = stat()
            guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                return .failure(Self.failure(errno: errno, isLink: false))
            }
            if let refusal = Self.refusal(info) { return .failure(refusal) }
            let fd = openat(folder, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { return .failure(Self.failure(errno: errno, isLink: false)) }
            guard fstat(fd, &info) == 0 else {
                let error = errno
                close(fd)
                return .failure(.failed(Errno(rawValue: error)))
            }
            if let refusal = Self.refusal(info) {
                close(fd)
                return .failure(refusal)
            }
            // A regular file reads the same either way; clear the flag so the descriptor is plain.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return .success(OpenedFile(descriptor: FileDescriptor(rawValue: fd), size: Int64(info.st_size)))
        }
    }

    /// Nil for a regular file, else why it is not served.
    private static func refusal(_ info: stat) -> Failure? {
        switch info.st_mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: .notFound  // no listings
        default: .forbidden      // symbolic link, FIFO, character or block device, socket
        }
    }

    /// Classifies a failed `openat` of the folder `name` in `folder`. With `O_NOFOLLOW |
    /// O_DIRECTORY` a symbolic link fails with ELOOP or ENOTDIR, as does a regular file for
    /// ENOTDIR: a look at the entry itself tells them apart.
    private func failure(errno error: Int32, at folder: Int32, _ name: [UInt8]) -> Failure {
        guard error == ENOTDIR || error == ELOOP else { return Self.failure(errno: error, isLink: false) }
        var info = stat()
        let isLink = Self.withCString(name) { fstatat(folder, $0, &info, AT_SYMLINK_NOFOLLOW) } == 0
            && info.st_mode & S_IFMT == S_IFLNK
        return Self.failure(errno: error, isLink: isLink)
    }

    private static func failure(errno error: Int32, isLink: Bool) -> Failure {
        if isLink { return .forbidden }
        switch error {
        case ENOENT, ENOTDIR, ENAMETOOLONG: return .notFound
        case ELOOP, EACCES, EPERM: return .forbidden  // ELOOP: the name itself is a link (O_NOFOLLOW)
        case EMFILE, ENFILE, ENOMEM: return .unavailable(Errno(rawValue: error))
        default: return .failed(Errno(rawValue: error))
        }
    }

    /// `body` with `bytes` as a NUL-terminated C string (`bytes` holds no NUL: see ``RequestPath``).
    private static func withCString<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        (bytes + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
        }
    }
}
