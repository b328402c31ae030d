import FletcherDomain
import FletcherTestSupport
import Foundation
import PropertyBased
import Testing

/// Random plans under random sequences of operations keep the rules' invariants.
@Suite("Rule invariants (property-based)")
struct RuleInvariantTests {
    /// Builds a random DAG (edges only from lower to higher index) and a random sequence of
    /// mutations from a list of random numbers, so shrinking works on plain integers.
    struct Scenario {
        var fixture: PlanFixture
        var ids: [UUID]
        var operations: [PlanMutation]

        init(_ numbers: [Int]) {
            var numbers = numbers.makeIterator()
            func next(_ bound: Int) -> Int { (numbers.next() ?? 0) % max(bound, 1) }
            let names = Names()
            var fixture = PlanFixture(names: names)
            let count = 1 + next(9)
            for index in 0..<count { fixture = fixture.products("p\(index)", eager: next(4) != 0) }
            if count > 1 {
                var seen = Set<String>()
                for _ in 0..<next(count * 2) {
                    let child = 1 + next(count - 1)
                    let parent = next(child)
                    if seen.insert("\(parent)>\(child)").inserted { fixture = fixture.edge("p\(parent)", "p\(child)") }
                }
            }
            let ids = (0..<count).map { names["p\($0)"] }
            var operations: [PlanMutation] = []
            while let code = numbers.next() {
                let target = ids[next(count)]
                switch code % 10 {
                case 0, 1, 2: operations.append(.update([StateUpdate(id: target, state: .success)]))
                case 3: operations.append(.update([StateUpdate(id: target, state: .running)]))
                case 4: operations.append(.update([StateUpdate(id: target, state: .failed)]))
                case 5: operations.append(.clear([target]))
                case 6: operations.append(.disable([target]))
                case 7: operations.append(.pause)
                case 8: operations.append(.unpause)
                default: operations.append(.submit(fixture.submission))
                }
            }
            self.fixture = fixture
            self.ids = ids
            self.operations = operations
        }
    }

    static let numbers = Gen.int(in: 0...1_000_000).array(of: 4...60)

    @Test func noReadyEagerProductIsLeftWaitingInAnActiveDataset() async {
        await propertyCheck(count: 300, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            var plan = try scenario.fixture.plan()
            for operation in scenario.operations {
                if let change = try? plan.applying(operation) { plan = change.plan }
                #expect(Self.readyButWaiting(plan).isEmpty, "after \(operation)")
            }
        }
    }

    @Test func afterAnUpdateOrClearEverythingDownstreamIsWaitingOrQueuedWithParentsDone() async {
        await propertyCheck(count: 300, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            var plan = try scenario.fixture.plan()
            for operation in scenario.operations {
                guard let change = try? plan.applying(operation) else { continue }
                plan = change.plan
                let named: [UUID]
                switch operation {
                case .update(let updates): named = updates.map(\.id)
                case .clear(let ids): named = ids
                default: continue
                }
                let graph = PlanGraph(plan)
                for position in graph.downstream(of: named.compactMap { graph.index[$0] }) {
                    let state = plan.dataProducts[position].state
                    let parentsDone = graph.parents(of: position).allSatisfy { plan.dataProducts[$0].state == .success }
                    #expect(state == .waiting || (state == .queued && parentsDone), "after \(operation)")
                }
            }
        }
    }

    @Test func aRefusedMutationChangesNothingAndDisabledProductsStayDisabled() async {
        await propertyCheck(count: 300, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            var plan = try scenario.fixture.plan()
            for operation in scenario.operations {
                let before = plan
                let disabledBefore = Set(before.dataProducts.filter { $0.state == .disabled }.map(\.id))
                do {
                    plan = try plan.applying(operation).plan
                } catch {
                    #expect(plan == before)
                }
                let disabledAfter = Set(plan.dataProducts.filter { $0.state == .disabled }.map(\.id))
                #expect(disabledBefore.isSubset(of: disabledAfter))
                #expect(plan.dataProducts.count == scenario.ids.count)
            }
        }
    }

    /// A change that says it keeps the rules' graph (so the store's cache carries the graph of the
    /// plan it started from) leaves exactly that graph; and the rules given that graph make the same
    /// change as the rules building their own.
    @Test func aKeptGraphIsAlwaysTheChangedPlansOwn() async {
        await propertyCheck(count: 300, input: Self.numbers) { numbers in
            let scenario = Scenario(numbers)
            var plan = try scenario.fixture.plan()
            // Also a resubmission that adds a product.
            let grown = scenario.fixture.products("extra").edge("p0", "extra")
            for operation in scenario.operations + [.pause, .unpause, .submit(grown.submission)] {
                let graph = PlanGraph(plan)
                let now = Date(timeIntervalSince1970: 1_000)
                let built = try? operation.apply(to: plan, datasetId: plan.dataset.id, by: "svc", at: now)
                let given = try? operation.apply(to: plan, graph: graph, datasetId: plan.dataset.id, by: "svc", at: now)
                // Each queueing draws a new trigger id: the two changes agree on everything else.
                #expect(
                    Self.drawn(built?.plan) == Self.drawn(given?.plan)
                        && built?.transitions.map { Self.drawn($0) } == given?.transitions.map { Self.drawn($0) },
                    "after \(operation)")
                guard let change = given else { continue }
                switch operation {
                case .pause, .unpause:
                    // Neither touches a product or dependency.
                    #expect(change.keepsGraph, "after \(operation)")
                default: break
                }
                if change.plan.dataProducts.count > plan.dataProducts.count {
                    #expect(!change.keepsGraph, "a product added by \(operation)")
                }
                if change.keepsGraph {
                    #expect(Self.same(graph, PlanGraph(change.plan)), "after \(operation)")
                }
                plan = change.plan
            }
        }
    }

    /// The plan with every trigger id, which the rules draw at random, taken out.
    static func drawn(_ plan: Plan?) -> Plan? {
        guard var plan else { return nil }
        for position in plan.dataProducts.indices { plan.dataProducts[position].triggerId = nil }
        return plan
    }

    static func drawn(_ transition: StateTransition) -> StateTransition {
        var transition = transition
        transition.triggerId = nil
        return transition
    }

    static func same(_ a: PlanGraph, _ b: PlanGraph) -> Bool {
        a.index == b.index && a.included == b.included
            && (0..<a.count).allSatisfy { Array(a.children(of: $0)) == Array(b.children(of: $0)) && Array(a.parents(of: $0)) == Array(b.parents(of: $0)) }
    }

    /// Eager waiting products of an active dataset whose parents all succeeded.
    static func readyButWaiting(_ plan: Plan) -> [UUID] {
        guard !plan.dataset.paused else { return [] }
        let graph = PlanGraph(plan)
        return plan.dataProducts.indices.filter { position in
            let product = plan.dataProducts[position]
            return product.state == .waiting && product.eager
                && graph.parents(of: position).allSatisfy { plan.dataProducts[$0].state == .success }
        }.map { plan.dataProducts[$0].id }
    }
}
