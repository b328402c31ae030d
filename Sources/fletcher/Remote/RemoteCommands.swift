import ArgumentParser
import FletcherClient
import FletcherHTTP
import Foundation

/// `fletcher plan show|submit|pause|unpause`.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show, submit, pause or unpause a plan on a running server.",
        subcommands: [Show.self, Submit.self, Pause.self, Unpause.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a plan: its dataset and its data products.")
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The dataset's id.") var dataset: String

        func run() async throws {
            try await plan(remote, dataset) { client, id in try await client.getPlan(path: .init(datasetId: id)).ok.body.json }
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a plan from a JSON file (as POST /api/plan takes it; - reads standard input).")
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The plan's JSON file.") var file: String

        func run() async throws {
            let bytes: Data
            do {
                bytes = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw Self.fail(.badRequest, "cannot read \(file): \(error.localizedDescription)")
            }
            let submission: Components.Schemas.PlanSubmission
            do {
                submission = try JSONDecoder().decode(Components.Schemas.PlanSubmission.self, from: bytes)
            } catch {
                throw Self.fail(.badRequest, "\(file) is not a plan submission: \((error as? DecodingError).map(Problem.describe) ?? "\(error)")")
            }
            try await remote {
                let plan = try await remote.connection().client.submitPlan(body: .json(submission)).ok.body.json
                try printPlan(plan, json: remote.json)
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a plan: nothing more is queued until it is unpaused.")
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The dataset's id.") var dataset: String

        func run() async throws {
            try await plan(remote, dataset) { client, id in try await client.pausePlan(path: .init(datasetId: id)).ok.body.json }
        }
    }

    struct Unpause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unpause a plan: what is ready is queued.")
        @OptionGroup var remote: RemoteOptions
        @Argument(help: "The dataset's id.") var dataset: String

        func run() async throws {
            try await plan(remote, dataset) { client, id in try await client.unpausePlan(path: .init(datasetId: id)).ok.body.json }
        }
    }
}

extension AsyncParsableCommand {
    /// Runs `call` on the dataset and prints the plan it answers.
    func plan(
        _ remote: RemoteOptions, _ dataset: String, _ call: (Client, String) async throws -> Components.Schemas.Plan
    ) async throws {
        try await self.remote {
            try printPlan(try await call(remote.connection().client, try uuid(dataset, "dataset")), json: remote.json)
        }
    }
}

/// `fletcher products`: data products across every plan.
struct ProductsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "products", abstract: "List data products across every plan, the most recently changed first.")
    @OptionGroup var remote: RemoteOptions
    @Option(help: "Only in these states (repeatable or comma-separated).") var state: [String] = []
    @Option(help: "Only of this compute type.") var compute: String?
    @Option(help: "Only of this dataset.") var dataset: String?
    @Option(help: "Only changed at or after this time (RFC 3339).") var since: String?
    @Option(help: "At most this many (1–100000).") var limit = 100

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 100000") }
    }

    func run() async throws {
        try await remote {
            let client = remote.connection().client
            var listed: [Components.Schemas.ListedDataProduct] = []
            var cursor: String?
            repeat {
                let page = try await client.listDataProducts(
                    query: .init(
                        state: state.isEmpty ? nil : state, compute: compute, datasetId: dataset, since: since, cursor: cursor,
                        limit: min(1000, limit - listed.count))
                ).ok.body.json
                listed += page.dataProducts
                cursor = page.nextCursor
            } while cursor != nil && listed.count < limit
            if remote.json { return try printJSON(listed) }
            printTable(
                ["DATASET", "DATA PRODUCT", "NAME", "COMPUTE", "STATE", "TRY", "CHANGED"],
                listed.map { row in
                    [
                        row.value1.datasetId, row.value2.id, row.value2.name, row.value2.compute.rawValue,
                        row.value2.state.rawValue + (row.value2.late ? " (late)" : ""), String(row.value2._try),
                        format(row.value2.modifiedDate),
                    ]
                })
        }
    }
}

/// The data products of one dataset a change names: `DATASET ID…`.
struct NamedProducts: ParsableArguments {
    @Argument(help: "The dataset's id.") var dataset: String
    @Argument(help: "The data products' ids.") var ids: [String]

    func validate() throws {
        guard !ids.isEmpty else { throw ValidationError("name at least one data product") }
    }

    var path: Operations.ClearDataProducts.Input.Path {
        get throws { .init(datasetId: try uuid(dataset, "dataset")) }
    }

    var productIds: [String] {
        get throws { try ids.map { try uuid($0, "data product") } }
    }
}

/// `fletcher update DATASET ID… --state S`: report states, as a compute platform does.
struct UpdateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update", abstract: "Report the state of data products (running, success or failed).")
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var named: NamedProducts
    @Option(help: "The state to report: running, success or failed.") var state: String

    func validate() throws {
        guard ["running", "success", "failed"].contains(state) else {
            throw ValidationError("--state must be running, success or failed, not '\(state)'")
        }
    }

    func run() async throws {
        try await remote {
            let state = Components.Schemas.State(rawValue: state)!
            let updates = try named.productIds.map { Components.Schemas.StateUpdate(id: $0, state: state) }
            let plan = try await remote.connection().client.updateDataProducts(
                path: .init(datasetId: try named.path.datasetId), body: .json(updates)
            ).ok.body.json
            try printPlan(plan, json: remote.json)
        }
    }
}

/// `fletcher clear DATASET ID…`.
struct ClearCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear", abstract: "Set data products, and everything downstream of them, back to waiting.")
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var named: NamedProducts

    func run() async throws {
        try await remote {
            let client = remote.connection().client
            try printPlan(try await client.clearDataProducts(path: try named.path, body: .json(try named.productIds)).ok.body.json, json: remote.json)
        }
    }
}

/// `fletcher disable DATASET ID…`.
struct DisableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable data products.")
    @OptionGroup var remote: RemoteOptions
    @OptionGroup var named: NamedProducts

    func run() async throws {
        try await remote {
            let client = remote.connection().client
            let path = Operations.DisableDataProducts.Input.Path(datasetId: try named.path.datasetId)
            try printPlan(try await client.disableDataProducts(path: path, body: .json(try named.productIds)).ok.body.json, json: remote.json)
        }
    }
}

/// `fletcher rerun --failed`: a bulk clear of failed products across plans.
struct RerunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerun",
        abstract: "Clear every failed data product across plans (and what depends on it), so that it runs again.",
        discussion: "Each plan is changed in a transaction of its own; --dry-run shows what would change.")
    @OptionGroup var remote: RemoteOptions
    @Flag(help: "Re-run the failed data products (the only selection so far; required).") var failed = false
    @Option(help: "Only of this compute type.") var compute: String?
    @Option(help: "Only of this dataset.") var dataset: String?
    @Option(help: "Only those changed at or after this time (RFC 3339).") var since: String?
    @Option(help: "Refuse (and change nothing) if more products than this are selected.") var max = 1000
    @Flag(help: "Show what would change; change nothing.") var dryRun = false

    func validate() throws {
        guard failed else { throw ValidationError("say what to re-run: --failed") }
    }

    func run() async throws {
        try await remote {
            let filter = Components.Schemas.BulkFilter(state: .case1("failed"), compute: compute, datasetId: dataset, since: since)
            let result = try await remote.connection().client.bulkClear(
                body: .json(.init(filter: filter, dryRun: dryRun, maxProducts: max))
            ).ok.body.json
            if remote.json { return try printJSON(result) }
            var rows: [[String]] = []
            for outcome in result.results {
                for product in outcome.products {
                    rows.append([outcome.datasetId, product.id, product.name, "\(product.from.rawValue) → \(product.to.rawValue)"])
                }
                if let error = outcome.error { rows.append([outcome.datasetId, "-", "-", "unchanged: \(error.detail)"]) }
            }
            printTable(["DATASET", "DATA PRODUCT", "NAME", dryRun ? "WOULD GO" : "WENT"], rows)
            let changed = result.results.reduce(0) { $0 + $1.changed.count }
            let plans = result.results.filter { !$0.changed.isEmpty }.count
            let verb = dryRun ? "would be" : changed == 1 ? "was" : "were"
            say(
                "\(changed) data product\(changed == 1 ? "" : "s") \(verb) re-run in \(plans) plan\(plans == 1 ? "" : "s")"
                    + (dryRun ? " (dry run: nothing changed)" : ""))
        }
    }
}

/// The dataset's line, then a row per data product.
func printPlan(_ plan: Components.Schemas.Plan, json: Bool) throws {
    if json { return try printJSON(plan) }
    say("dataset \(plan.dataset.id)\(plan.dataset.paused ? " (paused)" : "")\(plan.dataset.late ? " (late)" : ""), changed \(format(plan.dataset.modifiedDate)) by \(plan.dataset.modifiedBy)")
    printTable(
        ["DATA PRODUCT", "NAME", "COMPUTE", "STATE", "TRY", "CHANGED"],
        plan.dataProducts.map { product in
            [
                product.id, product.name, product.compute.rawValue, product.state.rawValue + (product.late ? " (late)" : ""),
                String(product._try), format(product.modifiedDate),
            ]
        })
}

func format(_ date: Date) -> String {
    date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted))
}

/// `text` as a UUID's lowercase text, or a usage error naming `what`.
func uuid(_ text: String, _ what: String) throws -> String {
    guard let id = UUID(uuidString: text) else { throw ValidationError("the \(what) id '\(text)' is not a UUID") }
    return id.uuidString.lowercased()
}
