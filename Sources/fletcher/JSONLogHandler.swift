import FletcherJSON
import Foundation
import Logging
import Synchronization

/// `LOG_FORMAT=json`: one JSON object per line on standard error — `time`, `level`, `label`,
/// `message`, `source`, and the metadata as string fields — for log shippers.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String
    private static let output = Mutex<Void>(())

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    var metadataProvider: Logger.MetadataProvider?

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadataProvider?.get() ?? [:] { fields[key] = "\(value)" }
        for (key, value) in metadata { fields[key] = "\(value)" }
        for (key, value) in event.metadata ?? [:] { fields[key] = "\(value)" }
        if let error = event.error { fields["error"] = "\(error)" }
        let (level, message, source) = (event.level, event.message, event.source)
        var text = "{"
        func add(_ key: String, _ value: String) {
            if text.count > 1 { text += "," }
            text += Self.quoted(key) + ":" + Self.quoted(value)
        }
        add("time", Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true)))
        add("level", level.rawValue)
        add("label", label)
        add("message", "\(message)")
        add("source", source)
        for key in fields.keys.sorted() where !["time", "level", "label", "message", "source"].contains(key) {
            add(key, fields[key]!)
        }
        text += "}\n"
        Self.output.withLock { _ in FileHandle.standardError.write(Data(text.utf8)) }
    }

    static func quoted(_ value: String) -> String {
        var json = JSONBytes(capacity: value.utf8.count + 2)
        json.string(value)
        return json.text
    }
}
