import FletcherDomain
import FletcherJSON
import Foundation
import PropertyBased
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    @Test func textIsCompactWithSortedKeysAndRoundTrips() throws {
        let value = JSONValue.object([
            "b": .array([.integer(1), .number(2.5), .null, .bool(true)]), "a": .string("x\"y\n\u{1}"),
        ])
        #expect(value.text == #"{"a":"x\"y\n\u0001","b":[1,2.5,null,true]}"#)
        #expect(try JSONValue(parsing: value.text) == value)
    }

    @Test func depthCountsNesting() {
        #expect(JSONValue.integer(1).node.depth == 0)
        #expect(JSONValue.array([.object(["a": .array([])])]).node.depth == 3)
        // Brackets inside strings (names or values, escaped quotes before them) do not count.
        #expect(JSONValue.object(["a[{": .string(#"\"[[[{"#)]).node.depth == 1)
        #expect(JSONValue.string("[]").node.depth == 0)
    }

    /// A value is its canonical text: the same value spelt differently (spacing, key order, `3.0` for
    /// `3`, escapes) is equal and has one text — stored `jsonb` comes back spaced and reordered.
    @Test func valuesAreHeldAsCanonicalText() throws {
        let spelt = try JSONValue(parsing: #" { "b" : [ 3.0 , "\u0041" ] , "a" : { } } "#)
        #expect(spelt.text == #"{"a":{},"b":[3,"A"]}"#)
        #expect(spelt == .object(["b": .array([.integer(3), .string("A")]), "a": .object([:])]))
        #expect(spelt.hashValue == JSONValue.object(["a": .object([:]), "b": .array([.number(3), .string("A")])]).hashValue)
        #expect(spelt.node == .object(["a": .object([:]), "b": .array([.integer(3), .string("A")])]))
        #expect(JSONValue.null.text == "null" && JSONValue.bool(false).text == "false" && JSONValue.integer(-7).text == "-7")
        // Held in a string's room: a plan's free-form values up to 15 bytes take no heap of their own.
        #expect(MemoryLayout<JSONValue?>.size == MemoryLayout<String>.size)
    }
}

/// The byte parser behind `JSONValue(parsing:)` reads every document as Foundation's decoder does.
@Suite("JSON parser")
struct JSONParserTests {
    static func decoded(_ text: String) -> JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    @Test(arguments: [
        "0", "-0", "3", "-17", "3.0", "3e0", "0.1e1", "1E+2", "1.5", "-2.25e-3", "12345678901234567890",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808", "100000000000000000000.0", "1e300",
        #""plain""#, #""esc \" \\ \/ \b \f \n \r \t \u00e9 \u20AC \ud83d\ude00 ✓""#, #""""#, "true", "false", "null",
        "[]", "{}", " [1, [2, {\"a\": [null]}], \"x\"] ", #"{"b": 1, "a": {"c": [true, false]}, "a2": -0.5}"#,
        "\n\t{ \"sp\" : [ 1 , 2 ] }\r\n",
    ])
    func validDocumentsReadAsFoundationReadsThem(text: String) throws {
        #expect(try JSONValue(parsing: text) == Self.decoded(text))
    }

    @Test(arguments: [
        "", " ", "01", "1.", ".5", "-", "1e", "+1", "[1 2]", "{\"a\" 1}", "{1:2}", "tru", "nul",
        "\"open", "\"bad \\x escape\"", "\"\\ud83d alone\"", "\"\\udc00\"", "\"\\u12G4\"", "[1] 2", "1e400",
        "\"tab\tinside\"", "[", "{", "{\"a\":",
    ])
    func invalidDocumentsAreRefused(text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: text) }
        #expect(Self.decoded(text) == nil)
    }

    /// Stricter than Foundation's decoder, which takes a trailing comma; a repeated member name keeps
    /// its first value, as Foundation's does (stored text never repeats one: `jsonb` keeps the last).
    @Test func trailingCommasAreRefusedAndTheFirstOfARepeatedNameCounts() throws {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: "[1,]") }
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: #"{"a":1,}"#) }
        #expect(try JSONValue(parsing: #"{"dup": 1, "dup": 2}"#) == .object(["dup": .integer(1)]))
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(try JSONValue(parsing: fine).node.depth == 100)
    }

    /// Objects holding every kind of value: any integer, fractions, text of any characters (controls,
    /// quotes, non-BMP) as values and as member names.
    static let values = zip(
        Gen.int(in: Int.min...Int.max), Gen.double(in: -1e12...1e12),
        Gen.character(in: "\u{0}"..."\u{D7FF}").string(of: 0...12), Gen.bool
    ).map { integer, number, text, flag -> JSONValue in
        .object([
            "i": .integer(integer), "n": .number(number), "s": .string(text),
            "a": .array([.bool(flag), .null, .string(text + "\u{1F600}\"\\"), .number(number / 7)]),
            "o": .object([text: .integer(integer), text + "\u{1}": .array([])]),
        ])
    }

    @Test func uuidsAreSpelledAsFoundationSpellsThemInLowerCase() {
        for id in (0..<1_000).map({ _ in UUID() }) + [UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))] {
            #expect(id.lowercased == id.uuidString.lowercased())
            var json = JSONBytes()
            json.uuid(id)
            #expect(json.text == "\"" + id.uuidString.lowercased() + "\"")
        }
    }

    @Test func storedTextReadsBackAsFoundationReadsIt() async {
        await propertyCheck(count: 500, input: Self.values) { value in
            let text = value.text
            #expect((try? JSONValue(parsing: text)) == Self.decoded(text), "\(text)")
        }
    }

    /// Text and tree agree: a value made from its own tree or text is the same value.
    @Test func aValueIsItsTreeAndItsText() async {
        await propertyCheck(count: 500, input: Self.values) { value in
            #expect(JSONValue(value.node) == value, "\(value.text)")
            #expect((try? JSONValue(parsing: value.text))?.text == value.text)
        }
    }
}
