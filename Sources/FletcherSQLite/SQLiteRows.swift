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
        """
        id, compute, name, version, eager, passthrough, state, run_id, link, passback, extra, modified_by, modified_date, \
        try, trigger_id, retries_used, retry_at, timeout_at, retries, max_queued_s, max_running_s, deadline, deadline_missed
        """
    /// How many columns `sqliteColumns` names.
    static let sqliteColumnCount = 23

    init(sqliteRow row: Row) throws {
        self.init(
            id: row[0], compute: try StoredColumn.enumValue(row[1], as: Compute.self), name: row[2], version: row[3],
            eager: row[4], passthrough: try StoredColumn.json(row[5], column: "data_product.passthrough"),
            state: try StoredColumn.enumValue(row[6], as: DataProductState.self), runId: row[7], link: row[8],
            passback: try StoredColumn.json(row[9], column: "data_product.passback"),
            extra: try StoredColumn.json(row[10], column: "data_product.extra"),
            modifiedBy: row[11], modifiedDate: Date(microsecondsSince1970: row[12]),
            limits: ProductLimits(retries: row[18], maxQueuedSeconds: row[19], maxRunningSeconds: row[20]), tryNumber: row[13],
            triggerId: row[14], retriesUsed: row[15], retryAt: (row[16] as Int64?).map(Date.init(microsecondsSince1970:)),
            timeoutAt: (row[17] as Int64?).map(Date.init(microsecondsSince1970:)),
            deadline: (row[21] as Int64?).map(Date.init(microsecondsSince1970:)), deadlineMissed: row[22])
    }

    /// Its dataset's id and its position, then the values of `sqliteColumns` in order.
    func sqliteArguments(datasetId: UUID, position: Int) -> StatementArguments {
        [
            datasetId, position, id, compute.rawValue, name, version, eager, StoredColumn.json(passthrough), state.rawValue, runId, link,
            StoredColumn.json(passback), StoredColumn.json(extra), modifiedBy, modifiedDate.microsecondsSince1970, tryNumber,
            triggerId, retriesUsed, retryAt?.microsecondsSince1970, timeoutAt?.microsecondsSince1970, limits.retries,
            limits.maxQueuedSeconds, limits.maxRunningSeconds, deadline?.microsecondsSince1970, deadlineMissed,
        ]
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
