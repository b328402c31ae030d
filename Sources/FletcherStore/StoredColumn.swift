public import FletcherDomain
import FletcherJSON

/// Conversions both engines use between domain values and column values: JSON as text, enums by raw value.
public enum StoredColumn {
    public static func json(_ value: JSONValue?) -> String? { value?.text }

    /// Parses a stored JSON column; invalid JSON is a `StoreError.corrupt` naming the column.
    public static func json(_ text: String?, column: String) throws -> JSONValue? {
        guard let text else { return nil }
        do { return try JSONValue(parsing: text) } catch {
            throw StoreError.corrupt("column \(column) holds invalid JSON")
        }
    }

    /// Reads a stored enum value; an unknown one is a `StoreError.corrupt`.
    public static func enumValue<T: RawRepresentable>(_ raw: String, as: T.Type) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else { throw StoreError.corrupt("unknown \(T.self) '\(raw)'") }
        return value
    }
}
