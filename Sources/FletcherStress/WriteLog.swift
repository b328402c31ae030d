import FletcherJSON
import Foundation
import Synchronization

/// `--log-writes`: every write request's outcome as one JSON line, in the order answers come, so
/// that a test can check afterwards that each acknowledged change is stored (a failover test
/// compares it with the products' histories):
///
///     {"kind":"update","dataset_id":"…","data_product_ids":["…"],"state":"running","status":200,
///      "retry_after":null,"sent":1733400000.120,"answered":1733400000.151,"error":null}
///
/// `kind` is `update` or `clear` (a clear has no `state`); `status` 0 is a request that got no
/// answer (`error` says why); `sent` and `answered` are Unix times in seconds.
final class WriteLog: Sendable {
    private let handle: Mutex<FileHandle>

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw StressError("cannot create the write log \(path)")
        }
        handle = Mutex(try FileHandle(forWritingTo: URL(fileURLWithPath: path)))
    }

    /// One write's line.
    func record(
        kind: String, datasetId: String, productIds: [String], state: String?, answer: LoadClient.Answer, sent: Date, answered: Date
    ) {
        var line = JSONBytes(capacity: 256)
        line.raw("{\"kind\":")
        line.string(kind)
        line.raw(",\"dataset_id\":")
        line.string(datasetId)
        line.raw(",\"data_product_ids\":[")
        for (index, id) in productIds.enumerated() {
            if index > 0 { line.raw(",") }
            line.string(id)
        }
        line.raw("],\"state\":")
        if let state { line.string(state) } else { line.raw("null") }
        line.append(Array(",\"status\":\(answer.status),\"retry_after\":".utf8))
        if let retryAfter = answer.retryAfter { line.string(retryAfter) } else { line.raw("null") }
        line.append(Array(String(format: ",\"sent\":%.6f,\"answered\":%.6f,\"error\":", sent.timeIntervalSince1970, answered.timeIntervalSince1970).utf8))
        if let error = answer.error { line.string(error) } else { line.raw("null") }
        line.raw("}\n")
        let bytes = Data(line.bytes)
        handle.withLock { $0.write(bytes) }
    }

    func close() {
        handle.withLock { try? $0.close() }
    }
}
