import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import PropertyBased
import Testing

/// Whatever sequence of operations goes through the `Store`, the database read with plain SQL holds
/// together, on both engines: no dependency (read through the `dependency_rows` view) names a
/// product missing from its dataset, no history row (as stored: on PostgreSQL a row of many
/// creations names their positions) or trigger lacks its product, and the view and the product
/// rows show exactly the plan the store answers with.
@Suite("Data model (property-based)")
struct DataModelPropertyTests {
    /// One step of a scenario: a mutation as the API makes it, the dispatcher delivering (or giving
    /// up on) every due trigger, or the plan cache emptied (as when another process wrote).
    enum Operation: CustomStringConvertible {
        case mutation(PlanMutation)
        case deliver(failing: Bool)
        case forgetCachedPlans

        var description: String {
            switch self {
            case .mutation(.submit(let submission)):
                "submit \(submission.dataProducts.map(\.name)) with \(submission.dependencies.count) dependencies"
            case .mutation(let mutation): "\(mutation)"
            case .deliver(let failing): failing ? "give up on due triggers" : "deliver due triggers"
            case .forgetCachedPlans: "forget cached plans"
            }
        }
    }

    /// A dataset of 2–8 products and a random sequence of operations on it, from a list of random
    /// numbers (so that shrinking works on plain integers). Dependencies only go from a lower
    /// index to a higher one, so submissions have no cycle; each names a random part of the
    /// products and dependencies, so resubmissions leave rows out, add them and change them, and
    /// some are refused (a dependency on a product never stored, or disabled).
    struct Scenario: CustomStringConvertible {
        let datasetId = UUID()
        var operations: [Operation] = []

        init(_ numbers: [Int]) {
            var numbers = numbers.makeIterator()
            func next(_ bound: Int) -> Int { (numbers.next() ?? 0) % max(bound, 1) }
            let count = 2 + next(7)
            let ids = (0..<count).map { _ in UUID() }
            let eager = ids.map { _ in next(4) != 0 }
            while let code = numbers.next() {
                let target = ids[next(count)]
                switch code % 13 {
                case 0, 1, 2:
                    let products = (0..<count).filter { _ in next(3) != 0 }.map { index in
                        PlanSubmission.DataProduct(
                            id: ids[index], compute: index % 2 == 0 ? .cams : .dbxaas, name: "p\(index)", version: "\(next(3))",
                            eager: eager[index], passthrough: .object([:]))
                    }
                    var seen = Set<Int>()
                    var dependencies: [PlanSubmission.Dependency] = []
                    for _ in 0..<next(count * 2) {
                        let child = 1 + next(count - 1)
                        let parent = next(child)
                        guard seen.insert(parent * count + child).inserted else { continue }
                        dependencies.append(
                            .init(parentId: ids[parent], childId: ids[child], extra: next(2) == 0 ? nil : .integer(next(100))))
                    }
                    operations.append(
                        .mutation(
                            .submit(
                                PlanSubmission(
                                    datasetId: datasetId, datasetExtra: .object(["v": .integer(next(100))]), dataProducts: products,
                                    dependencies: dependencies))))
                case 3, 4: operations.append(.mutation(.update([StateUpdate(id: target, state: .success)])))
                case 5: operations.append(.mutation(.update([StateUpdate(id: target, state: next(2) == 0 ? .running : .failed)])))
                case 6: operations.append(.mutation(.clear([target])))
                case 7: operations.append(.mutation(.disable([target])))
                case 8: operations.append(.mutation(.pause))
                case 9: operations.append(.mutation(.unpause))
                case 10: operations.append(.mutation(.dispatchFailed(dataProductId: target, passback: .object([:]))))
                case 11: operations.append(.deliver(failing: next(2) == 0))
                default: operations.append(.forgetCachedPlans)
                }
            }
        }

        var description: String { operations.map(\.description).joined(separator: "; ") }
    }

    static let numbers = Gen.int(in: 0...1_000_000).array(of: 2...24)

    /// PostgreSQL writes changes of more than 4 rows in parts, as it does a big submission (with
    /// the new products' creations as one history row), so that small plans take that path too.
    @Test(arguments: TestEngine.available)
    func noOperationsLeaveARowWithoutItsProduct(engine: TestEngine) async throws {
        let subject = try await StoreWithSQL.make(engine, rowsPerStatement: 4)
        await propertyCheck(count: 50, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            for operation in scenario.operations {
                try await Self.perform(operation, on: scenario.datasetId, subject.store)
                try await Self.expectWhole(scenario.datasetId, subject, after: operation)
            }
        }
        if engine == .postgres {
            // The scenarios wrote creations as one row (else the check above missed that format).
            #expect(try await subject.sql.rowsOfManyCreations() > 0)
        }
    }

    /// The checks see what they look for: rows written by hand without their products (on SQLite
    /// with its foreign keys off for the dependency) are counted, each kind apart.
    @Test(arguments: TestEngine.available)
    func theChecksCountRowsWithoutTheirProducts(engine: TestEngine) async throws {
        let subject = try await StoreWithSQL.make(engine)
        let dataset = UUID(), a = UUID(), b = UUID(), missing = UUID()
        let submission = PlanSubmission(
            datasetId: dataset, datasetExtra: nil,
            dataProducts: [a, b].map { .init(id: $0, compute: .cams, name: "n", version: "1", eager: true) },
            dependencies: [.init(parentId: a, childId: b)])
        _ = try await subject.store.apply(.submit(submission), to: dataset, by: "publisher")
        #expect(try await subject.sql.rowsWithoutProducts(of: dataset) == .none)
        try await subject.sql.writeRowsWithoutProducts(dataset: dataset, parent: a, missing: missing)
        #expect(
            try await subject.sql.rowsWithoutProducts(of: dataset)
                == PlainSQL.RowsWithoutProducts(dependencies: 1, history: engine == .postgres ? 2 : 1, triggers: 1))
    }

    static func perform(_ operation: Operation, on datasetId: UUID, _ store: any Store) async throws {
        switch operation {
        case .mutation(let mutation):
            do {
                _ = try await store.apply(mutation, to: datasetId, by: "publisher")
            } catch is PlanError {
                // Refused: nothing is written, which the checks after it see.
            }
        case .deliver(let failing):
            for compute in Compute.allCases {
                let now = Date()
                for claim in try await store.claim(compute: compute, maxInFlight: 100, owner: "property", leaseSeconds: 60, now: now) {
                    let attempt = DeliveryAttempt(
                        triggerId: claim.trigger.id, attempt: claim.attempt, httpStatus: failing ? 500 : 202,
                        error: failing ? "refused" : nil, durationMilliseconds: 1, process: "property")
                    let marked =
                        if failing {
                            try await store.markFailed(claim, owner: "property", attempt: attempt, passback: .object([:]), now: now)
                        } else {
                            try await store.markDelivered(claim, owner: "property", attempt: attempt, runId: UUID(), link: nil, now: now)
                        }
                    #expect(marked != nil, "the lease is this test's")
                }
            }
        case .forgetCachedPlans:
            store.planCache.removeAll()
        }
    }

    /// The database as plain SQL reads it: the dataset's product and dependency rows are the
    /// stored plan's, and none of its rows lacks its product. (Only the scenario's dataset: a
    /// failing scenario's rows stay in the database, and must not fail the smaller ones shrinking
    /// tries after it.)
    static func expectWhole(_ datasetId: UUID, _ subject: StoreWithSQL, after operation: Operation) async throws {
        let plan = try await subject.store.plan(datasetId)
        let expected = plan.map { plan in plan.dependencies.indices.map { DependencyRow(plan, position: $0) } } ?? []
        #expect(try await subject.sql.dependencyRows(of: datasetId) == expected, "after \(operation)")
        #expect(try await subject.sql.productIds(of: datasetId) == (plan?.dataProducts.map(\.id) ?? []), "after \(operation)")
        let orphans = try await subject.sql.rowsWithoutProducts(of: datasetId)
        #expect(orphans == .none, "after \(operation)")
    }
}
