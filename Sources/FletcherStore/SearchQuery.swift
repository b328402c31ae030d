public import FletcherDomain
public import Foundation

/// A search over datasets: case-insensitive substring of the id or the extra's JSON text.
public struct SearchQuery: Sendable, Hashable {
    /// Datasets per page.
    public static let pageSize = 50

    /// The last page a search reads (two billion datasets in): a later one is empty without asking
    /// the database, and its offset cannot overflow.
    public static let lastPage = 40_000_000

    /// The text to look for, lowercased; empty matches everything.
    public var text: String
    /// Zero-based page number.
    public var page: Int

    public init(text: String, page: Int) {
        self.text = text.lowercased()
        self.page = page
    }

    /// Rows to skip before this page.
    public var offset: Int { page * Self.pageSize }
}

/// One page of search results.
public struct SearchPage: Sendable, Hashable {
    public var rows: [SearchRow]
    /// The next page's number, or nil on the last page.
    public var nextPage: Int?

    public init(rows: [SearchRow], nextPage: Int?) {
        self.rows = rows
        self.nextPage = nextPage
    }

    /// Builds a page from up to `pageSize + 1` rows fetched: the extra row only says that more follow.
    public init(fetched: [SearchRow], query: SearchQuery) {
        self.rows = Array(fetched.prefix(SearchQuery.pageSize))
        self.nextPage = fetched.count > SearchQuery.pageSize ? query.page + 1 : nil
    }
}

/// A dataset as search lists it.
public struct SearchRow: Sendable, Hashable {
    public var datasetId: UUID
    public var extra: JSONValue?
    /// The latest modification of the dataset or any of its rows.
    public var modifiedDate: Date

    public init(datasetId: UUID, extra: JSONValue?, modifiedDate: Date) {
        self.datasetId = datasetId
        self.extra = extra
        self.modifiedDate = modifiedDate
    }
}
