import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
import Foundation
import Testing

/// The `dependency_rows` view, which both engines have with the same columns: plain SQL reads a
/// plan's dependencies there, whether they are rows (SQLite) or blocks (PostgreSQL).
@Suite("dependency_rows view")
struct DependencyRowsViewTests {
    static let submitted = Date(microsecondsSince1970: 1_700_000_000_123_456)
    static let resubmitted = Date(microsecondsSince1970: 1_700_000_060_654_321)

    /// A plan of four products and four dependencies with all kinds of extras, resubmitted with one
    /// dependency left out, one changed and one added, beside a dataset of its own.
    struct Plans {
        let dataset = UUID(), beside = UUID()
        let a = UUID(), b = UUID(), c = UUID(), d = UUID()

        func products(_ ids: UUID...) -> [PlanSubmission.DataProduct] {
            ids.map { .init(id: $0, compute: .cams, name: "n", version: "1", eager: true) }
        }

        var first: PlanSubmission {
            PlanSubmission(
                datasetId: dataset, datasetExtra: nil, dataProducts: products(a, b, c, d),
                dependencies: [
                    .init(parentId: a, childId: b, extra: .object(["ünïcode": .string("✓ \"quoted\""), "n": .array([.null, .number(0.5)])])),
                    .init(parentId: a, childId: c),
                    .init(parentId: b, childId: d, extra: .string("edge")),
                    .init(parentId: c, childId: d, extra: .integer(-7)),
                ])
        }

        var second: PlanSubmission {
            PlanSubmission(
                datasetId: dataset, datasetExtra: nil, dataProducts: products(d),
                dependencies: [.init(parentId: c, childId: d, extra: .bool(false)), .init(parentId: a, childId: d)])
        }

        var other: PlanSubmission {
            PlanSubmission(
                datasetId: beside, datasetExtra: nil, dataProducts: products(a, b), dependencies: [.init(parentId: a, childId: b)])
        }

        /// What the view shows of `dataset` after both submissions.
        var rows: [DependencyRow] {
            let first = self.first.dependencies, older = DependencyRowsViewTests.submitted.microsecondsSince1970
            let newer = DependencyRowsViewTests.resubmitted.microsecondsSince1970
            func row(_ position: Int, _ parent: UUID, _ child: UUID, _ extra: JSONValue?, _ at: Int64) -> DependencyRow {
                DependencyRow(
                    datasetId: dataset, parentId: parent, childId: child, position: position, extra: extra, modifiedBy: "publisher",
                    modifiedMicroseconds: at)
            }
            return [
                row(0, a, b, first[0].extra, older), row(1, a, c, nil, older), row(2, b, d, .string("edge"), older),
                row(3, c, d, .bool(false), newer), row(4, a, d, nil, newer),
            ]
        }
    }

    /// Submits `plans` at fixed times (so both engines stamp the same) and reads the view.
    static func viewed(_ plans: Plans, on engine: TestEngine) async throws -> [DependencyRow] {
        let subject = try await StoreWithSQL.make(engine)
        for (submission, at) in [(plans.first, submitted), (plans.other, submitted), (plans.second, resubmitted)] {
            _ = try await subject.store.mutate(submission.datasetId, createIfMissing: true) { (stored: consuming Plan?, _: Date, _: ChangeCall) in
                try PlanMutation.submit(submission).apply(to: stored.take(), datasetId: submission.datasetId, by: "publisher", at: at)
            }
        }
        let viewed = try await subject.sql.dependencyRows(of: plans.dataset)
        let plan = try #require(try await subject.store.plan(plans.dataset))
        #expect(viewed == plan.dependencies.indices.map { DependencyRow(plan, position: $0) })
        return viewed
    }

    @Test(arguments: TestEngine.available)
    func theViewShowsExactlyAPlansDependencies(engine: TestEngine) async throws {
        let plans = Plans()
        #expect(try await Self.viewed(plans, on: engine) == plans.rows)
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func bothEnginesShowTheSamePlanAsTheSameRows() async throws {
        let plans = Plans()
        let sqlite = try await Self.viewed(plans, on: .sqlite)
        let postgres = try await Self.viewed(plans, on: .postgres)
        #expect(sqlite == postgres)
        #expect(sqlite.count == 5)
    }
}
