import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// What needs an operator across every plan (docs/RULES.md rule 33): failed products by why they
/// failed, late ones, open circuits, paused plans. Read through the stores' indexes, a bounded
/// number of the newest of each kind (`Scope.limit`), then filtered by the page's filters.
struct AttentionReport: Sendable {
    enum Kind: String, CaseIterable, Sendable {
        /// Failed, no retry pending: someone has to act.
        case failed
        /// Failed by its platform, an automatic retry pending.
        case retrying
        /// Failed by a timeout (retrying or not).
        case timedOut = "timed_out"
        /// Failed because its trigger could not be delivered (docs/RULES.md rule 19).
        case undeliverable
        /// Past its deadline and not `success` (docs/RULES.md rule 27).
        case late

        var title: String {
            switch self {
            case .failed: "Failed, no retry left"
            case .retrying: "Retrying"
            case .timedOut: "Timed out"
            case .undeliverable: "Trigger undeliverable"
            case .late: "Late"
            }
        }

        /// The kind of a failed product, from its passback and pending retry.
        static func of(failed product: DataProduct) -> Kind {
            if product.passback?.text.contains("\"fletcher_dispatch\"") == true { return .undeliverable }
            if TimeoutNote(product.passback) != nil { return .timedOut }
            return product.retryAt == nil ? .failed : .retrying
        }
    }

    struct Row: Sendable {
        var kind: Kind
        var datasetId: UUID
        var product: DataProduct
        /// When it came to need attention: the product's last change, or its deadline.
        var since: Date
    }

    /// The page's filters (its query: `compute`, `dataset`, `age`).
    struct Filter: Sendable, Equatable {
        var compute: Compute?
        /// Part of the dataset's id or extra, any case.
        var dataset = ""
        var age: Age?

        init(compute: Compute? = nil, dataset: String = "", age: Age? = nil) {
            self.compute = compute
            self.dataset = dataset
            self.age = age
        }

        init(_ form: FormQuery) {
            compute = form["compute"].flatMap(Compute.init(rawValue:))
            dataset = (form["dataset"] ?? "").trimmingCharacters(in: .whitespaces)
            age = form["age"].flatMap(Age.init(rawValue:))
        }

        /// The query that shows the page with these filters.
        var query: [(String, String?)] {
            var fields: [(String, String?)] = []
            if let compute { fields.append(("compute", compute.rawValue)) }
            if !dataset.isEmpty { fields.append(("dataset", dataset)) }
            if let age { fields.append(("age", age.rawValue)) }
            return fields
        }
    }

    /// Only what started within a time: the age filter.
    enum Age: String, CaseIterable, Sendable {
        case hour = "1h"
        case sixHours = "6h"
        case day = "24h"
        case week = "7d"

        var seconds: TimeInterval {
            switch self {
            case .hour: 3_600
            case .sixHours: 6 * 3_600
            case .day: 86_400
            case .week: 7 * 86_400
            }
        }

        var label: String {
            switch self {
            case .hour: "in the last hour"
            case .sixHours: "in the last 6 hours"
            case .day: "in the last 24 hours"
            case .week: "in the last 7 days"
            }
        }
    }

    /// What a report is read for.
    enum Scope: Sendable {
        /// The attention page's rows: the newest 500 of each kind, before filtering by dataset text.
        case rows
        /// The home page's counts: the newest 50 of each kind (beyond, they say "50+"), and no
        /// datasets read unless a dataset text filter needs them.
        case counts

        var limit: Int {
            switch self {
            case .rows: 500
            case .counts: 50
            }
        }
    }

    var rows: [Kind: [Row]]
    /// Kinds whose read reached the scope's limit: more may exist than are listed.
    var truncated: Set<Kind>
    /// Platforms whose circuit is open (docs/RULES.md rule 20).
    var openCircuits: [DispatchQueueStatus]
    var paused: [Dataset]
    var pausedTruncated: Bool
    /// The datasets of the rows, for their extra.
    var datasets: [UUID: Dataset]
    var now: Date
    /// The newest of each kind read.
    var limit: Int

    var isEmpty: Bool { rows.values.allSatisfy(\.isEmpty) && openCircuits.isEmpty && paused.isEmpty }

    func count(_ kind: Kind) -> Int { rows[kind]?.count ?? 0 }

    /// Reads the report from the store, as much as `scope` needs.
    static func read(_ store: any Store, filter: Filter, now: Date = Date(), scope: Scope = .rows) async throws -> AttentionReport {
        let limit = scope.limit
        let since = filter.age.map { now.addingTimeInterval(-$0.seconds) }
        async let failedRead = store.dataProducts(
            ProductQuery(states: [.failed], compute: filter.compute, since: since, limit: limit))
        async let lateRead = store.lateProducts(compute: filter.compute, limit: limit)
        async let pausedRead = store.pausedDatasets(limit: limit)
        let queues = try await store.queueStatus(now: now)
        let (failed, late, pausedAll) = try await (failedRead, lateRead, pausedRead)

        var rows: [Kind: [Row]] = [:]
        var truncated = Set<Kind>()
        for listed in failed.products {
            let kind = Kind.of(failed: listed.product)
            rows[kind, default: []].append(Row(kind: kind, datasetId: listed.datasetId, product: listed.product, since: listed.product.modifiedDate))
        }
        if failed.next != nil { truncated.formUnion([.failed, .retrying, .timedOut, .undeliverable]) }
        for listed in late {
            let deadline = listed.product.deadline ?? listed.product.modifiedDate
            if let since, deadline < since { continue }
            rows[.late, default: []].append(Row(kind: .late, datasetId: listed.datasetId, product: listed.product, since: deadline))
        }
        if late.count >= limit { truncated.insert(.late) }
        var paused = pausedAll
        if let since { paused.removeAll { $0.modifiedDate < since } }

        let needed = scope == .rows || !filter.dataset.isEmpty ? Array(Set(rows.values.flatMap { $0.map(\.datasetId) })) : []
        var datasets = Dictionary(try await store.datasets(needed).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for dataset in paused { datasets[dataset.id] = dataset }
        if !filter.dataset.isEmpty {
            let text = filter.dataset.lowercased()
            let matches = { (id: UUID) -> Bool in
                id.lowercased.contains(text) || (datasets[id]?.extra?.text.lowercased().contains(text) ?? false)
            }
            for kind in rows.keys { rows[kind] = rows[kind]?.filter { matches($0.datasetId) } }
            paused = paused.filter { matches($0.id) }
        }
        let circuits = queues.filter { $0.circuitOpen && (filter.compute == nil || $0.compute == filter.compute) }
        return AttentionReport(
            rows: rows, truncated: truncated, openCircuits: circuits.sorted { $0.compute.rawValue < $1.compute.rawValue },
            paused: paused, pausedTruncated: pausedAll.count >= limit, datasets: datasets, now: now, limit: limit)
    }
}

/// The attention page and the summary the home page shows.
enum AttentionView {
    static func page(report: AttentionReport, filter: AttentionReport.Filter, visitor: Visitor, assets: Assets) -> HTML {
        let computes = [HTML(stringLiteral: "<option value=\"\">every platform</option>")]
            + Compute.allCases.map { compute -> HTML in
                "<option value=\"\(compute.rawValue)\"\(filter.compute == compute ? " selected" : "")>\(compute.displayName)</option>"
            }
        let ages = [HTML(stringLiteral: "<option value=\"\">any time</option>")]
            + AttentionReport.Age.allCases.map { age -> HTML in
                "<option value=\"\(age.rawValue)\"\(filter.age == age ? " selected" : "")>\(age.label)</option>"
            }
        let fragment = "/attention" + query(filter.query + [("fragment", "1")])
        let body: HTML = """
            <h1>Needs attention</h1>
            <p class="meta">Across every plan, newest first. \
            <span class="live" role="status" aria-live="polite">Live updates connecting…</span></p>
            <form class="filter attention-filter" method="get" action="/attention">
            <label>Platform <select name="compute">\(computes)</select></label>
            <label>Dataset <input type="search" name="dataset" value="\(filter.dataset)" placeholder="id or extra" \
            autocomplete="off" spellcheck="false"></label>
            <label>Started <select name="age">\(ages)</select></label>
            <button type="submit">Filter</button>
            </form>
            <div class="attention-live" data-events="/attention/events" data-fragment="\(fragment)">
            \(body(report))
            </div>
            """
        return Layout.page(
            title: "Needs attention", crumbs: [.init(title: "Search", href: "/"), .init(title: "Needs attention")], assets: assets,
            visitor: visitor, body: body)
    }

    /// Counts first, then a section per kind: what the page's live updates replace.
    static func body(_ report: AttentionReport) -> HTML {
        var sections: [HTML] = AttentionReport.Kind.allCases.map { kind in section(kind, report: report) }
        sections.append(circuits(report))
        sections.append(paused(report))
        return """
            \(counts(report, linkPrefix: ""))
            \(HTML.join(sections, separator: "\n"))
            """
    }

    /// The counts, each a link to its section (on the home page: to the attention page's).
    static func counts(_ report: AttentionReport, linkPrefix: String) -> HTML {
        var items: [HTML] = AttentionReport.Kind.allCases.map { kind in
            item(count: report.count(kind), more: report.truncated.contains(kind), label: kind.title, href: "\(linkPrefix)#\(kind.rawValue)",
                 kind: kind.rawValue)
        }
        items.append(item(count: report.openCircuits.count, more: false, label: "Open circuits", href: "\(linkPrefix)#circuits", kind: "circuits"))
        items.append(item(count: report.paused.count, more: report.pausedTruncated, label: "Paused plans", href: "\(linkPrefix)#paused", kind: "paused"))
        let summary: HTML = report.isEmpty ? "<p class=\"all-clear\">Nothing needs attention.</p>" : ""
        return """
            <section class="attention-counts" aria-label="Needs attention: counts"><ul>\(items)</ul>\(summary)</section>
            """
    }

    private static func item(count: Int, more: Bool, label: String, href: String, kind: String) -> HTML {
        let number = "\(count)\(more ? "+" : "")"
        return """
            <li class="\(count == 0 ? "zero" : "some") \(kind)"><a href="\(href)"><span class="count" data-attention-count="\(kind)">\(number)</span> \(label)</a></li>
            """
    }

    private static func section(_ kind: AttentionReport.Kind, report: AttentionReport) -> HTML {
        let rows = report.rows[kind] ?? []
        let title = "\(kind.rawValue)-title"
        guard !rows.isEmpty else {
            return """
                <section id="\(kind.rawValue)" class="attention-section" aria-labelledby="\(title)"><h2 id="\(title)">\(kind.title) \
                <span class="count">0</span></h2><p class="none">None.</p></section>
                """
        }
        let more: HTML =
            report.truncated.contains(kind)
            ? "<p class=\"note\">The newest \(report.limit) are read; narrow the filters to see older ones.</p>" : ""
        let body = rows.map { row(_: $0, report: report) }
        return """
            <section id="\(kind.rawValue)" class="attention-section" aria-labelledby="\(title)"><h2 id="\(title)">\(kind.title) \
            <span class="count">\(rows.count)</span></h2>
            <div class="table-scroll"><table class="attention-table">
            <thead><tr><th scope="col">Plan</th><th scope="col">Data product</th><th scope="col">Since</th><th scope="col">Why</th></tr></thead>
            <tbody>\(HTML.join(body, separator: "\n"))</tbody></table></div>\(more)</section>
            """
    }

    private static func row(_ row: AttentionReport.Row, report: AttentionReport) -> HTML {
        let dataset = row.datasetId.lowercased
        let product = row.product
        let link = "/plan/\(dataset)/product/\(product.id.lowercased)"
        return """
            <tr><td>\(plan(row.datasetId, report: report))</td>\
            <td><a href="\(link)">\(product.name) <span class="version">\(product.version)</span></a> \
            <code class="product-id">\(product.id.lowercased)</code> <span class="compute">\(product.compute.displayName)</span></td>\
            <td>\(Layout.time(row.since))</td><td>\(why(row, now: report.now))</td></tr>
            """
    }

    /// The plan's id as a link, with its extra shortened.
    private static func plan(_ id: UUID, report: AttentionReport) -> HTML {
        let text = report.datasets[id]?.extra?.text ?? ""
        let short = text.count > 60 ? String(text.prefix(60)) + "…" : text
        let extra: HTML = text.isEmpty || text == "null" ? "" : " <code class=\"extra\">\(short)</code>"
        return "<a href=\"/plan/\(id.lowercased)\" title=\"\(id.lowercased)\"><code>\(String(id.lowercased.prefix(8)))</code></a>\(extra)"
    }

    /// Why a row needs attention, in words.
    static func why(_ row: AttentionReport.Row, now: Date) -> HTML {
        let product = row.product
        switch row.kind {
        case .failed:
            let message = failureMessage(product.passback).map { ": \($0)" } ?? ""
            return "try \(product.tryNumber) failed, no retry left\(message)"
        case .retrying:
            let retry = product.retryAt.map { TimerView.retry($0, nextTry: product.tryNumber + 1, now: now) } ?? ""
            return "try \(product.tryNumber) failed \(retry)"
        case .timedOut:
            let note: HTML = TimeoutNote(product.passback).map(TimerView.timedOut) ?? "timed out"
            let retry: HTML = product.retryAt.map { TimerView.retry($0, nextTry: product.tryNumber + 1, now: now) } ?? "no retry left"
            return "\(note) \(retry)"
        case .undeliverable:
            return "trigger not delivered\(dispatchMessage(product.passback).map { ": \($0)" } ?? "")"
        case .late:
            let deadline = product.deadline.map(Layout.time) ?? ""
            return "deadline \(deadline) passed; now \(Layout.stateBadge(product.state))"
        }
    }

    /// A platform's own failure message, when its passback has one (`error` or `message`).
    private static func failureMessage(_ passback: JSONValue?) -> String? {
        guard case .object(let members)? = passback?.node else { return nil }
        for key in ["error", "message"] {
            if case .string(let text)? = members[key], !text.isEmpty { return text.count > 200 ? String(text.prefix(200)) + "…" : text }
        }
        return nil
    }

    private static func dispatchMessage(_ passback: JSONValue?) -> String? {
        guard case .object(let members)? = passback?.node, case .object(let note)? = members["fletcher_dispatch"] else { return nil }
        var parts: [String] = []
        if case .integer(let attempts)? = note["attempts"] { parts.append("\(attempts) attempt\(attempts == 1 ? "" : "s")") }
        if case .string(let error)? = note["error"] { parts.append(error) }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    private static func circuits(_ report: AttentionReport) -> HTML {
        guard !report.openCircuits.isEmpty else {
            return """
                <section id="circuits" class="attention-section" aria-labelledby="circuits-title"><h2 id="circuits-title">Open circuits \
                <span class="count">0</span></h2><p class="none">None: every platform takes triggers.</p></section>
                """
        }
        let rows = report.openCircuits.map { status -> HTML in
            let oldest: HTML = status.oldestPending.map(Layout.time) ?? "—"
            return """
                <tr><td>\(status.compute.displayName)</td><td>\(status.consecutiveFailures)</td><td>\(status.pending)</td><td>\(oldest)</td></tr>
                """
        }
        return """
            <section id="circuits" class="attention-section" aria-labelledby="circuits-title"><h2 id="circuits-title">Open circuits \
            <span class="count">\(report.openCircuits.count)</span></h2>
            <p>Triggers to these platforms wait: one probe at a time is sent until one is accepted.</p>
            <div class="table-scroll"><table class="attention-table">
            <thead><tr><th scope="col">Platform</th><th scope="col">Failures in a row</th><th scope="col">Triggers waiting</th>\
            <th scope="col">Oldest waiting since</th></tr></thead>
            <tbody>\(HTML.join(rows, separator: "\n"))</tbody></table></div></section>
            """
    }

    private static func paused(_ report: AttentionReport) -> HTML {
        guard !report.paused.isEmpty else {
            return """
                <section id="paused" class="attention-section" aria-labelledby="paused-title"><h2 id="paused-title">Paused plans \
                <span class="count">0</span></h2><p class="none">None.</p></section>
                """
        }
        let rows = report.paused.map { dataset -> HTML in
            "<tr><td>\(plan(dataset.id, report: report))</td><td>\(dataset.modifiedBy)</td><td>\(Layout.time(dataset.modifiedDate))</td></tr>"
        }
        return """
            <section id="paused" class="attention-section" aria-labelledby="paused-title"><h2 id="paused-title">Paused plans \
            <span class="count">\(report.paused.count)</span></h2>
            <div class="table-scroll"><table class="attention-table">
            <thead><tr><th scope="col">Plan</th><th scope="col">Last changed by</th><th scope="col">Since</th></tr></thead>
            <tbody>\(HTML.join(rows, separator: "\n"))</tbody></table></div></section>
            """
    }

    /// The home page's summary: the counts, linking to the attention page, live.
    static func summary(_ report: AttentionReport) -> HTML {
        """
        <section class="attention-summary" aria-labelledby="attention-summary-title">
        <h2 id="attention-summary-title"><a href="/attention">Needs attention</a></h2>
        <div class="attention-live" data-events="/attention/events" data-fragment="/attention?fragment=summary">
        \(counts(report, linkPrefix: "/attention"))
        </div></section>
        """
    }
}
