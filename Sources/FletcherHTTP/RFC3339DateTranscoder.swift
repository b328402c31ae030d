public import Foundation
public import OpenAPIRuntime

/// Writes times as RFC 3339 UTC with microseconds (`2026-11-23T03:20:13.123456Z`), the precision
/// stored, and reads RFC 3339 with or without fractional seconds and with any offset.
public struct RFC3339DateTranscoder: DateTranscoder {
    public init() {}

    public func encode(_ date: Date) throws -> String {
        var text = ""
        Self.write(date, to: &text)
        return text
    }

    /// Appends `2026-11-23T03:20:13.123456Z` for `date` to `out` (no formatter: this runs for every
    /// time in every plan answered).
    public static func write(_ date: Date, to out: inout String) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(fromDays: days)
        var bytes = [UInt8](repeating: 0, count: 27)
        func put(_ value: Int64, at start: Int, digits: Int) {
            var rest = value
            for index in stride(from: start + digits - 1, through: start, by: -1) {
                bytes[index] = 0x30 + UInt8(rest % 10)
                rest /= 10
            }
        }
        guard (0...9999).contains(year) else {
            out += String(year) + "-01-01T00:00:00.000000Z"  // outside RFC 3339's years; never stored
            return
        }
        put(year, at: 0, digits: 4)
        bytes[4] = 0x2D
        put(month, at: 5, digits: 2)
        bytes[7] = 0x2D
        put(day, at: 8, digits: 2)
        bytes[10] = 0x54
        put(secondOfDay / 3600, at: 11, digits: 2)
        bytes[13] = 0x3A
        put(secondOfDay % 3600 / 60, at: 14, digits: 2)
        bytes[16] = 0x3A
        put(secondOfDay % 60, at: 17, digits: 2)
        bytes[19] = 0x2E
        put(fraction, at: 20, digits: 6)
        bytes[26] = 0x5A
        out += String(decoding: bytes, as: UTF8.self)
    }

    public func decode(_ text: String) throws -> Date {
        var strategy = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        strategy.timeZone = TimeZone(identifier: "UTC")!
        if let date = try? strategy.parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time"))
    }

    /// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
