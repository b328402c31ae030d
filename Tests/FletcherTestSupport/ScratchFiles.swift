public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Files tests write (SQLite databases, `.env` files) go in a folder of this test process's own,
/// removed when the process exits; folders left by test processes that did not exit, and files of
/// the flat layout earlier versions used, are swept on the next run.
public enum ScratchFiles {
    private static let prefix = "fletcher-tests-"

    /// The folder, made (and the sweep run) on first use.
    public static let folder: URL = {
        let temporary = FileManager.default.temporaryDirectory
        sweep(temporary)
        let folder = temporary.appendingPathComponent("\(prefix)\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: ScratchFiles.folder) }
        return folder
    }()

    /// A new path in the folder: `name-<UUID>.<suffix>`.
    public static func path(_ name: String, suffix: String) -> String {
        folder.appendingPathComponent("\(name)-\(UUID().uuidString).\(suffix)").path
    }

    /// Whether `name` is exactly how earlier versions of these tests named their files in the
    /// temporary directory: a prefix, a UUID, and a SQLite suffix (or none, for `.env` files).
    public static func isLegacy(_ name: String) -> Bool {
        for (prefix, suffixes) in [
            ("fletcher-test-", [".sqlite", ".sqlite-wal", ".sqlite-shm"]), ("fletcher-two-", [".sqlite", ".sqlite-wal", ".sqlite-shm"]),
            ("fletcher-", [".sqlite", ".sqlite-wal", ".sqlite-shm"]), ("env-", [""]),
        ] where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard rest.count >= 36, UUID(uuidString: String(rest.prefix(36))) != nil else { continue }
            if suffixes.contains(String(rest.dropFirst(36))) { return true }
        }
        return false
    }

    /// Removes folders of test processes that are gone, and files an hour old or more named as
    /// earlier versions of these tests named them.
    public static func sweep(_ temporary: URL) {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: temporary.path) else { return }
        let hourAgo = Date().addingTimeInterval(-3600)
        for name in names {
            let url = temporary.appendingPathComponent(name)
            if name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count)), pid != getpid(),
                kill(pid, 0) != 0, errno == ESRCH
            {
                try? manager.removeItem(at: url)
            } else if isLegacy(name),
                let modified = (try? manager.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date,
                modified < hourAgo
            {
                try? manager.removeItem(at: url)
            }
        }
    }
}
