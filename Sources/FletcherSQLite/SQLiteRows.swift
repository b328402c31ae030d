import FletcherDomain
import FletcherStore
import Foundation
import GRDB

extension Dataset {
    /// Columns: id, paused, extra, modified_by, modified_date.
    init(sqliteRow row: Row) throws {
        self.init(
            id: row[0], paused: row[1], extra: try StoredColumn.json(row[2], column: "dataset.extra"),
            modifiedBy: row[3], modifiedDate: Date(microsecondsSince1970: row[4]))
    }
}

extension DataProduct {
    static let sqliteColumns =
        "id, compute, name, version, eager, passthrough, state, run_id, link, passback, extra, modified_by, modified_date"

    init(sqliteRow row: Row) throws {
        self.init(
            id: row[0], compute: try StoredColumn.enumValue(row[1], as: Compute.self), name: row[2], version: row[3],
            eager: row[4], passthrough: try StoredColumn.json(row[5], column: "data_product.passthrough"),
            state: try StoredColumn.enumValue(row[6], as: DataProductState.self), runId: row[7], link: row[8],
            passback: try StoredColumn.json(row[9], column: "data_product.passback"),
            extra: try StoredColumn.json(row[10], column: "data_product.extra"),
            modifiedBy: row[11], modifiedDate: Date(microsecondsSince1970: row[12]))
    }
}

extension Dependency {
    static let sqliteColumns = "parent_id, child_id, extra, modified_by, modified_date"

    init(sqliteRow row: Row) throws {
        self.init(
            parentId: row[0], childId: row[1], extra: try StoredColumn.json(row[2], column: "dependency.extra"),
            modifiedBy: row[3], modifiedDate: Date(microsecondsSince1970: row[4]))
    }
}
