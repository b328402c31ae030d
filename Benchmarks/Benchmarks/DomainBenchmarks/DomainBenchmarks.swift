import Benchmark
import FletcherDomain
import FletcherHTTP
import Foundation

// Benchmarks of the domain engine: plan validation, the trigger rule, downstream reset and JSON
// encoding of a plan, each at 100, 10,000 and 100,000 data products. Every benchmark builds its
// plan in `setup`, outside the measured region, and measures exactly what the server does for the
// request, as `Store.apply` does it: `PlanMutation.apply(to:datasetId:by:at:)` on the stored plan,
// or `PlanJSON.encode` for the plan as JSON. Each benchmark runs in a process of its own, so
// peakMemoryResident includes that benchmark's fixture (and only that one).

/// The sizes measured, with iteration limits that keep the whole suite within a few minutes on 2 cores.
private var sizes: [(products: Int, configuration: Benchmark.Configuration)] {[
    (100, configuration(warmupIterations: 3, maxIterations: 10_000, maxDuration: .seconds(1))),
    (10_000, configuration(warmupIterations: 2, maxIterations: 200, maxDuration: .seconds(5))),
    (100_000, configuration(warmupIterations: 1, maxIterations: 10, maxDuration: .seconds(20))),
]}

private func configuration(warmupIterations: Int, maxIterations: Int, maxDuration: Duration) -> Benchmark.Configuration {
    .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: warmupIterations,
        maxDuration: maxDuration,
        maxIterations: maxIterations)
}

/// A stored plan and the mutation a request applies to it.
private struct MutationInput {
    var stored: Plan
    var mutation: PlanMutation
    var datasetId: UUID

    /// What `Store.apply` computes for the request.
    func apply() throws -> PlanChange {
        try mutation.apply(to: stored, datasetId: datasetId, by: PlanFixture.actor, at: PlanFixture.now)
    }
}

/// Times one mutation applied to its stored plan.
private func measureApply(_ benchmark: Benchmark, _ input: MutationInput) {
    benchmark.startMeasurement()
    let change = try! input.apply()
    benchmark.stopMeasurement()
    blackHole(change)
}

private func name(_ operation: String, _ products: Int) -> String {
    "\(operation) n=\(products)"
}

let benchmarks: @Sendable () -> Void = {
    for (products, configuration) in sizes {
        // POST /api/plan for a new dataset: request checks (duplicate ids and edges), endpoint
        // checks, the merge, the cycle check over the whole graph and the initial trigger rule.
        Benchmark(
            name("Plan validation", products), configuration: configuration,
            closure: { benchmark, fixture in
                let mutation = PlanMutation.submit(fixture.submission)
                benchmark.startMeasurement()
                let change = try! mutation.apply(
                    to: nil, datasetId: fixture.datasetId, by: PlanFixture.actor, at: PlanFixture.now)
                benchmark.stopMeasurement()
                blackHole(change)
            },
            setup: { PlanFixture(size: products) })

        // PUT …/update: the running product in the middle layer reports success; its downstream is
        // reset (already waiting) and the trigger rule queues the children whose parents all succeeded.
        Benchmark(
            name("Trigger rule", products), configuration: configuration,
            closure: measureApply,
            setup: {
                let fixture = PlanFixture(size: products)
                let (stored, runningId) = fixture.planWithOneRunningParent()
                let mutation = PlanMutation.update([
                    StateUpdate(id: runningId, state: .success, runId: PlanFixture.uuid(0xF1_715E, 1), link: "https://compute.example/runs/done")
                ])
                let input = MutationInput(stored: stored, mutation: mutation, datasetId: fixture.datasetId)
                // The benchmark measures what it claims only if the update does queue children.
                let queued = try input.apply().transitions.filter { $0.to == .queued }.count
                precondition(queued > 0, "the update queued nothing")
                return input
            })

        // PUT …/clear of the first source in a completed plan: everything downstream of it goes back
        // to waiting, then the trigger rule runs (and queues nothing: the source is not eager).
        Benchmark(
            name("Downstream reset", products), configuration: configuration,
            closure: measureApply,
            setup: {
                let fixture = PlanFixture(size: products)
                let input = MutationInput(
                    stored: fixture.completedPlan, mutation: .clear([fixture.sourceToClear]), datasetId: fixture.datasetId)
                let resets = try input.apply().transitions.filter { $0.reason == .downstreamReset }.count
                precondition(resets >= products / 2, "clearing the source reset only \(resets) products")
                return input
            })

        // A completed plan (every product succeeded, with run id and link) through `PlanJSON`, the
        // writer the server's plan answers use.
        Benchmark(
            name("PlanJSON encoding", products), configuration: configuration,
            closure: { benchmark, plan in
                benchmark.startMeasurement()
                let json = PlanJSON.encode(plan)
                benchmark.stopMeasurement()
                blackHole(json)
            },
            setup: { PlanFixture(size: products).completedPlan })
    }
}
