import FletcherDomain
import FletcherStore

/// Conversions between domain values and PostgreSQL column values.
enum PostgresValue {
    static func json(_ value: JSONValue?) -> String? { value?.text }

    static func json(_ text: String?, column: String) throws -> JSONValue? {
        guard let text else { return nil }
        do { return try JSONValue(parsing: text) } catch {
            throw StoreError.corrupt("column \(column) holds invalid JSON")
        }
    }

    static func enumValue<T: RawRepresentable>(_ raw: String, as: T.Type) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else { throw StoreError.corrupt("unknown \(T.self) '\(raw)'") }
        return value
    }

    /// Escapes LIKE's wildcards (and its escape character) so the text matches literally.
    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
