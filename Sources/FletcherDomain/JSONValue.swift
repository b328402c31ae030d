import Foundation

/// A free-form JSON value: a dataset's or data product's `extra`, a `passthrough` or a `passback`.
///
/// Held as its canonical text — compact, object keys sorted — so the same value always has the same
/// text, equal values compare equal by it, and writing one into an answer is a copy. A plan holds
/// one or more per data product: as a tree of dictionaries `{"n": 1}` takes about 150 bytes of heap
/// (15 MB for a 100,000-product plan's passthroughs); as text up to 15 bytes long it takes none
/// (Swift keeps such strings inline), and longer text takes its length and a string's header.
/// `node` gives the tree when a value's structure is needed.
public struct JSONValue: Sendable, Hashable {
    /// Compact JSON text with sorted keys: what the stores persist, search matches against and answers carry.
    public let text: String

    /// The value whose canonical text `text` is (written by `JSONBytes.json(_:)`, or read back from it).
    private init(canonical text: String) {
        self.text = text
    }

    public init(_ node: JSONNode) {
        var json = JSONBytes(capacity: 16)
        json.json(node)
        self.init(canonical: json.text)
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

    public static let null = JSONValue(canonical: "null")

    public static func bool(_ value: Bool) -> JSONValue { JSONValue(canonical: value ? "true" : "false") }

    public static func integer(_ value: Int) -> JSONValue { JSONValue(canonical: String(value)) }

    public static func number(_ value: Double) -> JSONValue { JSONValue(.number(value)) }

    public static func string(_ value: String) -> JSONValue { JSONValue(.string(value)) }

    public static func array(_ values: [JSONValue]) -> JSONValue {
        var json = JSONBytes()
        json.raw("[")
        for (offset, value) in values.enumerated() {
            if offset > 0 { json.raw(",") }
            json.json(value)
        }
        json.raw("]")
        return JSONValue(canonical: json.text)
    }

    public static func object(_ members: [String: JSONValue]) -> JSONValue {
        if members.isEmpty { return JSONValue(canonical: "{}") }
        var json = JSONBytes()
        json.raw("{")
        for (offset, key) in members.keys.sorted().enumerated() {
            if offset > 0 { json.raw(",") }
            json.string(key)
            json.raw(":")
            json.json(members[key])
        }
        json.raw("}")
        return JSONValue(canonical: json.text)
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

/// A JSON value as a tree: what the parser reads, and what `JSONValue.node` gives back.
public enum JSONNode: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONNode])
    case object([String: JSONNode])

    /// The maximum depth of nested arrays and objects (a scalar has depth 0).
    public var depth: Int {
        switch self {
        case .array(let values): 1 + (values.map(\.depth).max() ?? 0)
        case .object(let members): 1 + (members.values.map(\.depth).max() ?? 0)
        default: 0
        }
    }
}

extension JSONNode: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONNode].self) {
            self = .array(value)
        } else if let value = try? container.decode([String: JSONNode].self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
