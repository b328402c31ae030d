import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// Conversions between domain values and SQLite column values.
enum SQLiteValue {
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
}

extension Dataset {
    /// Columns: id, paused, extra, modified_by, modified_date.
    init(sqliteRow row: Row) throws {
        self.init(
            id: row[0], paused: row[1], extra: try SQLiteValue.json(row[2], column: "dataset.extra"),
            modifiedBy: row[3], modifiedDate: Date(microsecondsSince1970: row[4]))
    }
}

extension DataProduct {
    static let sqliteColumns =
        "id, compute, name, version, eager, passthrough, state, run_id, link, passback, extra, modified_by, modified_date"

    init(sqliteRow row: Row) throws {
        self.init(
            id: row[0], compute: try SQLiteValue.enumValue(row[1], as: Compute.self), name: row[2], version: row[3],
            eager: row[4], passthrough: try SQLiteValue.json(row[5], column: "data_product.passthrough"),
            state: try SQLiteValue.enumValue(row[6], as: DataProductState.self), runId: row[7], link: row[8],
            passback: try SQLiteValue.json(row[9], column: "data_product.passback"),
            extra: try SQLiteValue.json(row[10], column: "data_product.extra"),
            modifiedBy: row[11], modifiedDate: Date(microsecondsSince1970: row[12]))
    }
}

extension Dependency {
    static let sqliteColumns = "parent_id, child_id, extra, modified_by, modified_date"

    init(sqliteRow row: Row) throws {
        self.init(
            parentId: row[0], childId: row[1], extra: try SQLiteValue.json(row[2], column: "dependency.extra"),
            modifiedBy: row[3], modifiedDate: Date(microsecondsSince1970: row[4]))
    }
}
