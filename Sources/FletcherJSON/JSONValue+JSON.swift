public import FletcherDomain
import Foundation

/// Making and reading `JSONValue`s: their canonical text is written by `JSONBytes` and read back by
/// `JSONParser`.
extension JSONValue {
    /// The value of `node`, as canonical text.
    public init(_ node: JSONNode) {
        var json = JSONBytes(capacity: 16)
        json.json(node)
        self.init(canonicalText: json.text)
    }

    /// The value as a tree.
    public var node: JSONNode {
        var text = text
        return text.withUTF8 { bytes in
            var parser = JSONParser(bytes: bytes)
            // The text was written canonically by `init(_:)`.
            guard let node = try? parser.document() else { preconditionFailure("a JSONValue's text is valid JSON") }
            return node
        }
    }

    public static func string(_ value: String) -> JSONValue { JSONValue(.string(value)) }

    public static func array(_ values: [JSONValue]) -> JSONValue {
        var json = JSONBytes()
        json.raw("[")
        for (offset, value) in values.enumerated() {
            if offset > 0 { json.raw(",") }
            json.json(value)
        }
        json.raw("]")
        return JSONValue(canonicalText: json.text)
    }

    public static func object(_ members: [String: JSONValue]) -> JSONValue {
        if members.isEmpty { return JSONValue(canonicalText: "{}") }
        var json = JSONBytes()
        json.raw("{")
        for (offset, key) in members.keys.sorted().enumerated() {
            if offset > 0 { json.raw(",") }
            json.string(key)
            json.raw(":")
            json.json(members[key])
        }
        json.raw("}")
        return JSONValue(canonicalText: json.text)
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        self.init(try JSONNode(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try node.encode(to: encoder)
    }
}
