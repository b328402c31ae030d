import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Rows in the text format of PostgreSQL's `COPY … FROM STDIN`: columns separated by tabs, rows
/// ended by newlines, `\N` for NULL, and backslash, tab, newline and carriage return escaped.
struct CopyText {
    private(set) var buffer: ByteBuffer

    init(capacity: Int) { buffer = ByteBufferAllocator().buffer(capacity: capacity) }

    mutating func uuid(_ value: UUID) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 37) { raw in
            let out = raw.bindMemory(to: UInt8.self)
            JSONBytes.write(value, to: UnsafeMutableBufferPointer(rebasing: out[0..<36]))
            out[36] = UInt8(ascii: "\t")
            return 37
        }
    }

    mutating func uuid(_ value: UUID?) {
        if let value { uuid(value) } else { null() }
    }

    mutating func integer(_ value: Int) {
        buffer.writeString(String(value))
        tab()
    }

    mutating func integer(_ value: Int?) {
        if let value { integer(value) } else { null() }
    }

    /// A `double precision`, in the shortest text that reads back as the same value.
    mutating func double(_ value: Double?) {
        guard let value else { return null() }
        buffer.writeString(String(value))
        tab()
    }

    mutating func timestamp(_ date: Date?) {
        if let date { timestamp(date) } else { null() }
    }

    mutating func bool(_ value: Bool) {
        buffer.writeInteger(value ? UInt8(ascii: "t") : UInt8(ascii: "f"))
        tab()
    }

    mutating func bool(_ value: Bool?) {
        if let value { bool(value) } else { null() }
    }

    mutating func text(_ value: String?) {
        guard var value else { return null() }
        value.withUTF8 { utf8 in
            if !utf8.contains(where: Self.needsEscape) {
                buffer.writeBytes(utf8)
            } else {
                for byte in utf8 {
                    switch byte {
                    case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                    case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                    case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                    case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                    default: buffer.writeInteger(byte)
                    }
                }
            }
        }
        tab()
    }

    /// A `timestamptz` in RFC 3339 (`2026-11-23T03:20:13.123456Z`), exact to the microsecond (the
    /// precision both engines store, rounded as every bind of a time is).
    mutating func timestamp(_ date: Date) {
        let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: JSONBytes.dateLength + 1) { raw in
            let out = raw.bindMemory(to: UInt8.self)
            guard date >= Self.commonEra, JSONBytes.writeDate(date, to: out) else { return 0 }
            out[JSONBytes.dateLength] = UInt8(ascii: "\t")
            return JSONBytes.dateLength + 1
        }
        if written == 0 {
            // Years of other widths, and before the common era (year 0 is 1 BC), as PostgreSQL reads them.
            let micros = date.microsecondsSince1970
            let (days, inDay) = micros.quotientAndRemainder(dividingBy: 86_400_000_000)
            let (day, time) = inDay < 0 ? (days - 1, inDay + 86_400_000_000) : (days, inDay)
            let (year, month, dayOfMonth) = JSONBytes.civil(fromDays: day)
            let seconds = time / 1_000_000
            buffer.writeString(
                String(
                    format: "%04lld-%02lld-%02lld %02lld:%02lld:%02lld.%06lld+00%@\t", year > 0 ? year : 1 - year, month,
                    dayOfMonth, seconds / 3600, seconds / 60 % 60, seconds % 60, time % 1_000_000, year > 0 ? "" : " BC"))
        }
    }

    /// 0001-01-01: PostgreSQL reads no year 0 in RFC 3339.
    private static let commonEra = Date(microsecondsSince1970: -62_135_596_800_000_000)

    mutating func null() {
        buffer.writeStaticString("\\N\t")
    }

    /// Ends the row (its last column's tab becomes the newline).
    mutating func endRow() {
        buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    private mutating func tab() { buffer.writeInteger(UInt8(ascii: "\t")) }

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n")
            || byte == UInt8(ascii: "\r")
    }
}

/// New rows of a change streamed into their tables with `COPY … FROM STDIN`: PostgreSQL inserts
/// rows as they arrive while the next ones are written, where a statement's values are built whole
/// and received whole before its first row is inserted.
enum CopyRows {
    /// Bytes sent to the database at a time.
    static let pieceSize = 256 * 1024

    static func products(_ positions: [Int], of plan: Plan, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let datasetId = plan.dataset.id
        try await copy(
            positions, into: "data_product",
            columns: [
                "dataset_id", "id", "position", "compute", "name", "version", "eager", "passthrough", "state", "run_id",
                "link", "passback", "extra", "modified_by", "modified_date", "try", "trigger_id", "retries_used", "retry_at",
                "timeout_at", "retries", "max_queued_s", "max_running_s", "deadline", "deadline_missed",
            ], connection, logger
        ) { (out: inout CopyText, position: Int) in
            let product = plan.dataProducts[position]
            out.uuid(datasetId)
            out.uuid(product.id)
            out.integer(position)
            out.text(product.compute.rawValue)
            out.text(product.name)
            out.text(product.version)
            out.bool(product.eager)
            out.text(StoredColumn.json(product.passthrough))
            out.text(product.state.rawValue)
            out.uuid(product.runId)
            out.text(product.link)
            out.text(StoredColumn.json(product.passback))
            out.text(StoredColumn.json(product.extra))
            out.text(product.modifiedBy)
            out.timestamp(product.modifiedDate)
            out.integer(product.tryNumber)
            out.uuid(product.triggerId)
            out.integer(product.retriesUsed)
            out.timestamp(product.retryAt)
            out.timestamp(product.timeoutAt)
            out.integer(product.limits.retries)
            out.double(product.limits.maxQueuedSeconds)
            out.double(product.limits.maxRunningSeconds)
            out.timestamp(product.deadline)
            out.bool(product.deadlineMissed)
        }
    }

    static func history(
        _ transitions: ArraySlice<StateTransition>, of plan: Plan, by actor: String, at now: Date,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let datasetId = plan.dataset.id
        try await copy(
            transitions, into: "product_event",
            columns: [
                "dataset_id", "data_product_id", "at", "kind", "from_state", "to_state", "reason", "actor", "run_id", "link", "try",
                "trigger_id",
            ],
            connection, logger
        ) { (out: inout CopyText, transition: StateTransition) in
            out.uuid(datasetId)
            out.uuid(transition.dataProductId)
            out.timestamp(now)
            out.text("state_change")
            out.text(transition.from?.rawValue)
            out.text(transition.to.rawValue)
            out.text(transition.reason.rawValue)
            out.text(actor)
            out.uuid(transition.runId)
            out.text(transition.link)
            out.integer(transition.tryNumber)
            out.uuid(transition.triggerId)
        }
    }

    private static func copy<Rows: Collection & Sendable>(
        _ rows: Rows, into table: String, columns: [String], _ connection: PostgresConnection, _ logger: Logger,
        row: (inout CopyText, Rows.Element) -> Void
    ) async throws {
        guard !rows.isEmpty else { return }
        try await connection.copyFrom(table: table, columns: columns, logger: logger) { writer in
            var out = CopyText(capacity: pieceSize + 4096)
            for element in rows {
                row(&out, element)
                out.endRow()
                if out.buffer.readableBytes >= pieceSize {
                    try await writer.write(out.buffer)
                    out = CopyText(capacity: pieceSize + 4096)
                }
            }
            if out.buffer.readableBytes > 0 { try await writer.write(out.buffer) }
        }
    }
}
