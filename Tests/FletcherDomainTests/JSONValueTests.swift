import FletcherDomain
import Foundation
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
        #expect(JSONValue.integer(1).depth == 0)
        #expect(JSONValue.array([.object(["a": .array([])])]).depth == 3)
    }
}
