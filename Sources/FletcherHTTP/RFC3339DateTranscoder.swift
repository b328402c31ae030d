public import Foundation
import FletcherDomain
import FletcherJSON
public import OpenAPIRuntime

/// Writes times as RFC 3339 UTC with microseconds (`2026-11-23T03:20:13.123456Z`), the precision
/// stored, and reads RFC 3339 with or without fractional seconds and with any offset.
public struct RFC3339DateTranscoder: DateTranscoder {
    public init() {}

    /// `2026-11-23T03:20:13.123456Z` (no formatter: this runs for every time in every answer).
    public func encode(_ date: Date) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        JSONBytes.writeDate(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public func decode(_ text: String) throws -> Date {
        var strategy = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        strategy.timeZone = TimeZone(identifier: "UTC")!
        if let date = try? strategy.parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time"))
    }
}
