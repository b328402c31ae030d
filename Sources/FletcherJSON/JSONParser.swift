public import FletcherDomain
public import Foundation

extension JSONValue {
    /// Parses a JSON document (RFC 8259): what the stores persist (`text`, or PostgreSQL's `jsonb`
    /// output), or any valid JSON, into its canonical text. Numbers come out as `JSONDecoder` reads
    /// them into a `JSONNode`: one with an exact `Int` value (`3`, `3.0`, `3e0`) as an integer, any
    /// other as a `Double`.
    /// Read straight from the UTF-8 bytes: a search page parses fifty datasets' `extra`, which
    /// Foundation's decoder makes the larger part of the page's cost.
    public init(parsing text: String) throws {
        var text = text
        let node = try text.withUTF8 { bytes in
            var parser = JSONParser(bytes: bytes)
            return try parser.document()
        }
        self.init(node)
    }
}

/// Where and why a JSON text is not valid.
public struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: String
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
}

/// A recursive-descent JSON parser over UTF-8 bytes. `JSONValue(parsing:)` reads whole values with
/// it; `read(_:validatingUTF8:_:)` lets a caller walk a document of a known shape member by
/// member, building its own values without an intermediate tree.
public struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0
    var depth = 0
    /// Whether strings are checked to be valid UTF-8 (bytes from the network); a Swift string's
    /// bytes always are.
    let validatesUTF8: Bool
    /// Whether a string read so far held a NUL character (written `\u0000`).
    public private(set) var sawNUL = false
    /// Nesting beyond this is refused rather than risking the stack (requests are capped far lower).
    static let maxDepth = 512

    init(bytes: UnsafeBufferPointer<UInt8>, validatesUTF8: Bool = false) {
        self.bytes = bytes
        self.validatesUTF8 = validatesUTF8
    }

    /// The bytes not read yet.
    public var remainingBytes: Int { bytes.count - index }

    /// Reads the one JSON document in `bytes` with `body`, which must read its whole value; only
    /// whitespace may follow.
    public static func read<Result>(
        _ bytes: UnsafeRawBufferPointer, validatingUTF8: Bool,
        _ body: (inout JSONParser) throws(JSONSyntaxError) -> Result
    ) throws(JSONSyntaxError) -> Result {
        var parser = JSONParser(bytes: bytes.assumingMemoryBound(to: UInt8.self), validatesUTF8: validatingUTF8)
        let result = try body(&parser)
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.fail("text after the value") }
        return result
    }

    mutating func document() throws(JSONSyntaxError) -> JSONNode {
        let value = try value()
        skipSpace()
        guard index == bytes.count else { throw fail("text after the value") }
        return value
    }

    /// Any value, as a tree.
    public mutating func readValue() throws(JSONSyntaxError) -> JSONNode { try value() }

    /// Reads past any value without building it (strings are still checked).
    public mutating func skipValue() throws(JSONSyntaxError) {
        skipSpace()
        guard index < bytes.count else { throw fail("a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): try members { (parser: inout JSONParser, _: String) throws(JSONSyntaxError) in try parser.skipValue() }
        case UInt8(ascii: "["): try sequence(closing: UInt8(ascii: "]")) { (parser: inout JSONParser) throws(JSONSyntaxError) in try parser.skipValue() }
        case UInt8(ascii: "\""): _ = try string()
        default: _ = try value()
        }
    }

    /// An object, each member's name given to `member`, which must read the member's value.
    public mutating func readObject(_ member: (inout JSONParser, String) throws(JSONSyntaxError) -> Void) throws(JSONSyntaxError) {
        try expect(UInt8(ascii: "{"), "an object")
        try members(member)
    }

    /// An array, `element` reading each element.
    public mutating func readArray(_ element: (inout JSONParser) throws(JSONSyntaxError) -> Void) throws(JSONSyntaxError) {
        try expect(UInt8(ascii: "["), "an array")
        try sequence(closing: UInt8(ascii: "]"), element)
    }

    public mutating func readString() throws(JSONSyntaxError) -> String {
        try expect(UInt8(ascii: "\""), "a string")
        return try string()
    }

    public mutating func readBool() throws(JSONSyntaxError) -> Bool {
        skipSpace()
        if (try? literal("true", .bool(true))) != nil { return true }
        if (try? literal("false", .bool(false))) != nil { return false }
        throw fail("true or false was expected")
    }

    /// Reads a `null` if one is next.
    public mutating func readNull() -> Bool {
        skipSpace()
        return (try? literal("null", .null)) != nil
    }

    /// A UUID written plainly as a string: 36 characters, hyphens at the usual places, hex digits
    /// of either case, no escapes. Anything else fails, even what another reader would accept.
    public mutating func readUUID() throws(JSONSyntaxError) -> UUID {
        skipSpace()
        guard index + 38 <= bytes.count, bytes[index] == UInt8(ascii: "\""), bytes[index + 37] == UInt8(ascii: "\"") else {
            throw fail("a UUID was expected")
        }
        guard let uuid = Self.uuid(in: bytes, at: index + 1) else { throw fail("a UUID was expected") }
        index += 38
        return uuid
    }

    /// A UUID spelt plainly, as `readUUID` reads one without its quotes (and as `UUID(uuidString:)`
    /// does, without going through `sscanf`); nil for anything else.
    public static func uuid(spelt text: some StringProtocol) -> UUID? {
        var text = String(text)
        guard text.utf8.count == 36 else { return nil }
        return text.withUTF8 { uuid(in: $0, at: 0) }
    }

    /// The UUID spelt in the 36 bytes at `offset` (which the caller has checked are there).
    private static func uuid(in bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> UUID? {
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var offset = start
        var valid = true
        withUnsafeMutableBytes(of: &uuid) { out in
            for position in 0..<16 {
                if position == 4 || position == 6 || position == 8 || position == 10 {
                    valid = valid && bytes[offset] == UInt8(ascii: "-")
                    offset += 1
                }
                let high = Self.hexDigit(bytes[offset]), low = Self.hexDigit(bytes[offset + 1])
                valid = valid && high < 16 && low < 16
                out[position] = high << 4 | (low & 0x0F)
                offset += 2
            }
        }
        return valid ? UUID(uuid: uuid) : nil
    }

    /// A hex digit's value; 0xFF when `byte` is none.
    private static func hexDigit(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: 0xFF
        }
    }

    /// Skips whitespace; `opening` must come next (the reader that follows consumes it).
    private mutating func expect(_ opening: UInt8, _ what: String) throws(JSONSyntaxError) {
        skipSpace()
        guard index < bytes.count, bytes[index] == opening else { throw fail("\(what) was expected") }
    }

    private func fail(_ reason: String) -> JSONSyntaxError { JSONSyntaxError(offset: index, reason: reason) }

    /// An error at the parser's position: for a caller reading a known shape, a value it refuses.
    public func failure(_ reason: String) -> JSONSyntaxError { fail(reason) }

    private mutating func skipSpace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    private mutating func value() throws(JSONSyntaxError) -> JSONNode {
        skipSpace()
        guard index < bytes.count else { throw fail("a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("a value was expected")
        }
    }

    private mutating func literal(_ word: StaticString, _ value: JSONNode) throws(JSONSyntaxError) -> JSONNode {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count,
            UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[index..<index + count])
                .elementsEqual(UnsafeRawBufferPointer(start: word.utf8Start, count: count))
        else { throw fail("a value was expected") }
        index += count
        return value
    }

    private mutating func array() throws(JSONSyntaxError) -> JSONNode {
        var elements: [JSONNode] = []
        try sequence(closing: UInt8(ascii: "]")) { (parser: inout JSONParser) throws(JSONSyntaxError) in
            elements.append(try parser.value())
        }
        return .array(elements)
    }

    private mutating func object() throws(JSONSyntaxError) -> JSONNode {
        var members: [String: JSONNode] = [:]
        try self.members { (parser: inout JSONParser, key: String) throws(JSONSyntaxError) in
            let value = try parser.value()
            if members[key] == nil { members[key] = value }  // a repeated name: the first counts, as in JSONDecoder
        }
        return .object(members)
    }

    /// An object's members from its opening brace: each name given to `member`, which reads the value.
    private mutating func members(_ member: (inout JSONParser, String) throws(JSONSyntaxError) -> Void) throws(JSONSyntaxError) {
        try sequence(closing: UInt8(ascii: "}")) { (parser: inout JSONParser) throws(JSONSyntaxError) in
            parser.skipSpace()
            guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: "\"") else {
                throw parser.fail("a member name was expected")
            }
            let key = try parser.string()
            parser.skipSpace()
            guard parser.index < parser.bytes.count, parser.bytes[parser.index] == UInt8(ascii: ":") else {
                throw parser.fail("':' was expected")
            }
            parser.index += 1
            try member(&parser, key)
        }
    }

    /// The comma-separated items of an array or object, from its opening bracket to `close`, each
    /// read by `item`.
    private mutating func sequence(
        closing close: UInt8, _ item: (inout JSONParser) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nested deeper than \(Self.maxDepth)") }
        defer { depth -= 1 }
        index += 1
        skipSpace()
        if index < bytes.count, bytes[index] == close {
            index += 1
            return
        }
        while true {
            try item(&self)
            skipSpace()
            guard index < bytes.count else { throw fail("unfinished array or object") }
            let byte = bytes[index]
            index += 1
            if byte == close { return }
            guard byte == UInt8(ascii: ",") else { throw fail("',' or '\(Character(Unicode.Scalar(close)))' was expected") }
        }
    }

    /// A string starting at the opening quote.
    private mutating func string() throws(JSONSyntaxError) -> String {
        index += 1
        let start = index
        var ascii = true
        // Most strings have no escapes: taken as they are.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return try text(UnsafeBufferPointer(rebasing: bytes[start..<index - 1]), ascii: ascii)
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw fail("a control character in a string") }
            ascii = ascii && byte < 0x80
            index += 1
        }
        var unescaped = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                let parser = self
                return try unescaped.withUnsafeBufferPointer { (text: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) in
                    try parser.text(text, ascii: false)
                }
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("unfinished escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): unescaped.append(escaped)
                case UInt8(ascii: "b"): unescaped.append(0x08)
                case UInt8(ascii: "f"): unescaped.append(0x0C)
                case UInt8(ascii: "n"): unescaped.append(0x0A)
                case UInt8(ascii: "r"): unescaped.append(0x0D)
                case UInt8(ascii: "t"): unescaped.append(0x09)
                case UInt8(ascii: "u"):
                    let character = try unicodeEscape()
                    if character == "\u{0}" { sawNUL = true }
                    unescaped.append(contentsOf: character.utf8)
                default: throw fail("an unknown escape")
                }
            default:
                guard byte >= 0x20 else { throw fail("a control character in a string") }
                unescaped.append(byte)
            }
        }
        throw fail("unfinished string")
    }

    /// A string's UTF-8 text; checked when it is not all ASCII and the bytes came from outside.
    private func text(_ utf8: UnsafeBufferPointer<UInt8>, ascii: Bool) throws(JSONSyntaxError) -> String {
        guard validatesUTF8, !ascii else { return String(decoding: utf8, as: UTF8.self) }
        guard let text = String(validating: utf8, as: UTF8.self) else { throw fail("a string that is not UTF-8") }
        return text
    }

    /// The character of a `\uXXXX` escape (after the `u`), a surrogate pair taking two.
    private mutating func unicodeEscape() throws(JSONSyntaxError) -> String {
        let first = try hex4()
        var scalar = UInt32(first)
        if (0xD800...0xDBFF).contains(first) {
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw fail("a lone surrogate")
            }
            index += 2
            let second = try hex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw fail("a lone surrogate") }
            scalar = 0x10000 + (UInt32(first - 0xD800) << 10) + UInt32(second - 0xDC00)
        }
        guard let character = Unicode.Scalar(scalar) else { throw fail("a lone surrogate") }
        return String(Character(character))
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw fail("unfinished \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("a hex digit was expected")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private func isDigit(_ offset: Int) -> Bool {
        offset < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset])
    }

    /// A number by JSON's grammar; exact integers (whatever their spelling) as `.integer`.
    private mutating func number() throws(JSONSyntaxError) -> JSONNode {
        let start = index
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative { index += 1 }
        guard isDigit(index) else { throw fail("a digit was expected") }
        // Digits of the integer part accumulated as long as they fit, negatively (Int.min fits).
        var integer = 0
        var fits = true
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while isDigit(index) {
                let digit = Int(bytes[index] - UInt8(ascii: "0"))
                let (times10, overflow1) = integer.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = times10.subtractingReportingOverflow(digit)
                if overflow1 || overflow2 { fits = false }
                integer = next
                index += 1
            }
        }
        var plain = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            plain = false
            index += 1
            guard isDigit(index) else { throw fail("a digit was expected after '.'") }
            while isDigit(index) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            plain = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard isDigit(index) else { throw fail("a digit was expected in the exponent") }
            while isDigit(index) { index += 1 }
        }
        if plain && fits {
            if negative { return .integer(integer) }
            if integer != Int.min { return .integer(-integer) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let number = Double(text), number.isFinite else {
            index = start
            throw fail("a number out of range")
        }
        if let exact = Int(exactly: number) { return .integer(exact) }
        return .number(number)
    }
}
