public import FletcherDomain
public import Foundation

/// An event's `data` as JSON: the canonical object text the stores keep and every reader of the
/// feed is given inside the event's JSON (`StoredEvent.writeJSON`). Times are RFC 3339 strings
/// with microseconds; numbers are written as `JSONValue` writes them.
///
/// JSON has no time type, so reading `data` back types a string as a time only under the keys
/// Fletcher's events hold times in (`timeKeys`), and a whole number as a `Double` only under the
/// keys that hold fractional numbers (`numberKeys`): every event the rules make reads back equal,
/// its times to the microsecond (the precision stored).
extension PlanEvent {
    /// The `data` keys whose values are times: read back as `.time` when they hold one.
    public static let timeKeys: Set<String> = ["deadline", "retry_at", "open_until"]
    /// The `data` keys whose values are fractional numbers: a whole number under one reads back
    /// as `.number`, not `.integer`.
    public static let numberKeys: Set<String> = ["late_by_s"]

    /// `data` as canonical `JSONValue` text (compact, keys sorted): what the stores persist.
    public var dataJSON: JSONValue {
        var json = JSONBytes(capacity: 16 + data.count * 32)
        Self.write(data, to: &json)
        return JSONValue(canonicalText: json.text)
    }

    /// Appends `data` as a JSON object, keys sorted.
    public static func write(_ data: [String: EventValue], to json: inout JSONBytes) {
        json.raw("{")
        for (offset, key) in data.keys.sorted().enumerated() {
            if offset > 0 { json.raw(",") }
            json.string(key)
            json.raw(":")
            switch data[key] ?? .null {
            case .bool(let flag): json.bool(flag)
            case .integer(let number): json.append(Array(String(number).utf8))
            case .number(let number): json.append(Array(JSONValue.numberText(number).utf8))
            case .string(let text): json.string(text)
            case .time(let date): json.date(date)
            case .null: json.raw("null")
            }
        }
        json.raw("}")
    }

    /// The `data` that `text` (written by `dataJSON`) holds. Throws for text that is not a JSON
    /// object of plain values (no arrays or objects).
    public static func data(parsing text: String) throws(JSONSyntaxError) -> [String: EventValue] {
        var text = text
        let result = text.withUTF8 { bytes in
            Result { () throws(JSONSyntaxError) in
                try JSONParser.read(UnsafeRawBufferPointer(bytes), validatingUTF8: false) { (parser: inout JSONParser) throws(JSONSyntaxError) in
                    try readData(&parser)
                }
            }
        }
        return try result.get()
    }

    private static func readData(_ parser: inout JSONParser) throws(JSONSyntaxError) -> [String: EventValue] {
        var data: [String: EventValue] = [:]
        try parser.readObject { (parser: inout JSONParser, key: String) throws(JSONSyntaxError) in
            let value: EventValue
            switch try parser.readValue() {
            case .null: value = .null
            case .bool(let flag): value = .bool(flag)
            case .integer(let number): value = numberKeys.contains(key) ? .number(Double(number)) : .integer(number)
            case .number(let number): value = .number(number)
            case .string(let text):
                if timeKeys.contains(key), let date = JSONBytes.readDate(text) { value = .time(date) } else { value = .string(text) }
            case .array, .object: throw parser.failure("\"\(key)\" in an event's data is not a plain value")
            }
            if data[key] == nil { data[key] = value }
        }
        return data
    }
}

extension JSONBytes {
    /// The time `text` spells in the form `writeDate` writes (`2026-11-23T03:20:13.123456Z`, UTC,
    /// six fraction digits), to the microsecond; nil for any other text.
    public static func readDate(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == dateLength, bytes[4] == 0x2D, bytes[7] == 0x2D, bytes[10] == 0x54, bytes[13] == 0x3A,
            bytes[16] == 0x3A, bytes[19] == 0x2E, bytes[26] == 0x5A
        else { return nil }
        func number(_ start: Int, _ digits: Int) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[start..<start + digits] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2), let micros = number(20, 6),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 60
        else { return nil }
        // Days since 1970-01-01 (Howard Hinnant's algorithm, the inverse of `civil(fromDays:)`).
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let days = era * 146_097 + yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear - 719_468
        // A day past the month's end (`02-30`) is no date.
        guard civil(fromDays: days) == (year, month, day) else { return nil }
        let total = (days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000 + micros
        return Date(timeIntervalSince1970: Double(total) / 1_000_000)
    }
}
