public import FletcherDomain
public import Foundation

/// Compact JSON written straight into UTF-8 bytes: the server answers every plan read and every
/// mutation with a whole plan, so this runs for every data product of every plan answered. No
/// formatter, no intermediate `String` per value (identifiers and times are written digit by digit).
public struct JSONBytes: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Text known to need no escaping (punctuation and keys).
    public mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// JSON written before.
    public mutating func append(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
    }

    public mutating func bool(_ value: Bool) {
        raw(value ? "true" : "false")
    }

    /// `value` as a quoted JSON string, escaped.
    public mutating func string(_ value: String) {
        bytes.append(0x22)
        var value = value
        value.withUTF8 { utf8 in
            // Most text needs no escape: append it whole.
            guard utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else {
                bytes.append(contentsOf: utf8)
                return
            }
            for byte in utf8 {
                switch byte {
                case 0x22: raw(#"\""#)
                case 0x5C: raw(#"\\"#)
                case 0x0A: raw(#"\n"#)
                case 0x0D: raw(#"\r"#)
                case 0x09: raw(#"\t"#)
                case ..<0x20:
                    raw(#"\u00"#)
                    bytes.append(Self.hexDigit(byte >> 4))
                    bytes.append(Self.hexDigit(byte & 0x0F))
                default: bytes.append(byte)
                }
            }
        }
        bytes.append(0x22)
    }

    /// `id` in lower case (`"0f8fad5b-d9cb-469f-a165-70867728950e"`, quoted).
    public mutating func uuid(_ id: UUID) {
        Self.appending(38, to: &bytes) { out in
            out[0] = 0x22
            Self.write(id, to: UnsafeMutableBufferPointer(rebasing: out[1..<37]))
            out[37] = 0x22
        }
    }

    /// Writes `id` in lower case, hyphenated, to `out` (36 bytes).
    public static func write(_ id: UUID, to out: UnsafeMutableBufferPointer<UInt8>) {
        withUnsafeBytes(of: id.uuid) { raw in
            var at = 0
            for index in 0..<16 {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    out[at] = 0x2D
                    at += 1
                }
                out[at] = hexDigit(raw[index] >> 4)
                out[at + 1] = hexDigit(raw[index] & 0x0F)
                at += 2
            }
        }
    }

    /// Appends `count` bytes written by `write` in place (one capacity check, not one per byte).
    private static func appending(
        _ count: Int, to bytes: inout [UInt8], _ write: (UnsafeMutableBufferPointer<UInt8>) -> Void
    ) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count) { buffer in
            write(buffer)
            bytes.append(contentsOf: buffer)
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x57 + nibble
    }

    /// `date` as RFC 3339 UTC with microseconds, the precision stored (`"2026-11-23T03:20:13.123456Z"`, quoted).
    public mutating func date(_ date: Date) {
        bytes.append(0x22)
        Self.writeDate(date, to: &bytes)
        bytes.append(0x22)
    }

    /// Appends `2026-11-23T03:20:13.123456Z` for `date`.
    public static func writeDate(_ date: Date, to bytes: inout [UInt8]) {
        let written = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: dateLength) { buffer in
            guard writeDate(date, to: buffer) else { return false }
            bytes.append(contentsOf: buffer)
            return true
        }
        if !written {
            // Outside RFC 3339's years (never stored): the year as it is, so order is kept where it can be.
            let year = civil(fromDays: Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))).0
            bytes.append(contentsOf: "\(year)-01-01T00:00:00.000000Z".utf8)
        }
    }

    /// The length of a date written by `writeDate(_:to:)`.
    public static let dateLength = 27

    /// Writes `2026-11-23T03:20:13.123456Z` for `date` to `out` (`dateLength` bytes); false, with
    /// nothing written, for a year outside RFC 3339's 0 to 9999.
    public static func writeDate(_ date: Date, to out: UnsafeMutableBufferPointer<UInt8>) -> Bool {
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
        guard (0...9999).contains(year) else { return false }
        func put(_ value: Int64, at start: Int, digits: Int) {
            var rest = value
            for index in stride(from: start + digits - 1, through: start, by: -1) {
                out[index] = 0x30 + UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
        }
        put(year, at: 0, digits: 4)
        out[4] = 0x2D
        put(month, at: 5, digits: 2)
        out[7] = 0x2D
        put(day, at: 8, digits: 2)
        out[10] = 0x54
        put(secondOfDay / 3600, at: 11, digits: 2)
        out[13] = 0x3A
        put(secondOfDay % 3600 / 60, at: 14, digits: 2)
        out[16] = 0x3A
        put(secondOfDay % 60, at: 17, digits: 2)
        out[19] = 0x2E
        put(fraction, at: 20, digits: 6)
        out[26] = 0x5A
        return true
    }

    /// `value`'s text (compact, object keys sorted); `null` for nil.
    public mutating func json(_ value: JSONValue?) {
        guard let value else { return raw("null") }
        var text = value.text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }

    /// `node` as compact JSON, object keys sorted: a `JSONValue`'s canonical text.
    public mutating func json(_ node: JSONNode) {
        switch node {
        case .null: raw("null")
        case .bool(let flag): bool(flag)
        case .integer(let number): bytes.append(contentsOf: String(number).utf8)
        case .number(let number): bytes.append(contentsOf: JSONValue.numberText(number).utf8)
        case .string(let text): string(text)
        case .array(let values):
            bytes.append(0x5B)
            for (offset, element) in values.enumerated() {
                if offset > 0 { bytes.append(0x2C) }
                json(element)
            }
            bytes.append(0x5D)
        case .object(let members):
            bytes.append(0x7B)
            for (offset, key) in members.keys.sorted().enumerated() {
                if offset > 0 { bytes.append(0x2C) }
                string(key)
                bytes.append(0x3A)
                json(members[key] ?? .null)
            }
            bytes.append(0x7D)
        }
    }

    /// The bytes as text.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's algorithm).
    public static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
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

extension Array where Element == UInt8 {
    /// A copy with no spare room, for bytes kept a long time (`Array(_:)` of an array, or of a slice
    /// of one, keeps the whole buffer's room).
    public func copiedToSize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { $1 = $0.initialize(fromContentsOf: self) }
    }
}
