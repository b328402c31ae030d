import FletcherStore
import Foundation
import NIOCore
import PostgresNIO

/// A `timestamptz` as whole microseconds, the precision both engines store.
///
/// postgres-nio's own `Date` coding truncates the floating-point seconds, so a time written and read
/// back can come out one microsecond early; this rounds, so every time round-trips exactly.
struct PostgresTimestamp: PostgresNonThrowingEncodable, PostgresDecodable, PostgresArrayEncodable, PostgresArrayDecodable {
    /// Microseconds between 1970-01-01 and 2000-01-01, PostgreSQL's epoch.
    private static let epochOffset: Int64 = 946_684_800_000_000

    var microsecondsSince1970: Int64

    init(_ date: Date) { microsecondsSince1970 = date.microsecondsSince1970 }

    var date: Date { Date(microsecondsSince1970: microsecondsSince1970) }

    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }
    static var psqlArrayType: PostgresDataType { .timestamptzArray }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(microsecondsSince1970 - Self.epochOffset)
    }

    init<JSONDecoder: PostgresJSONDecoder>(
        from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat,
        context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        guard type == .timestamptz || type == .timestamp, format == .binary, buffer.readableBytes == 8,
            let micros = buffer.readInteger(as: Int64.self)
        else { throw PostgresDecodingError.Code.typeMismatch }
        microsecondsSince1970 = micros + Self.epochOffset
    }
}

extension Date {
    /// This time as a PostgreSQL bind that round-trips exactly.
    var postgres: PostgresTimestamp { PostgresTimestamp(self) }
}
