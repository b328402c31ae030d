public import Foundation

/// A UUID as it travels: accepted in any case, always written lowercase.
/// Decoding fails, and the request gets a 400, for anything that is not a UUID.
public struct WireUUID: Codable, Hashable, Sendable, CustomStringConvertible {
    public var uuid: UUID

    public init(_ uuid: UUID) { self.uuid = uuid }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let uuid = UUID(uuidString: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not a UUID")
        }
        self.uuid = uuid
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { uuid.uuidString.lowercased() }
}

/// An integer read as `Int` is, but refused with the field's path when it is a number with a
/// fraction or out of `Int`'s range (`JSONDecoder` names no field for those).
public struct WireInteger: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    public var value: Int

    public init(_ value: Int) { self.value = value }

    public init(integerLiteral value: Int) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        do {
            value = try container.decode(Int.self)
        } catch {
            guard let number = try? container.decode(Double.self) else { throw error }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "expected an integer, not \(number)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// A value that is always written, as `null` when absent (the generated code would leave it out).
public struct Nullable<Wrapped: Codable & Hashable & Sendable>: Codable, Hashable, Sendable {
    public var value: Wrapped?

    public init(_ value: Wrapped?) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        value = container.decodeNil() ? nil : try container.decode(Wrapped.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}
