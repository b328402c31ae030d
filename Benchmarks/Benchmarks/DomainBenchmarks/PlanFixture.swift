import FletcherDomain
import FletcherJSON
import Foundation

/// A deterministic, realistically shaped plan of `size` data products, and the inputs each benchmark needs.
///
/// Shape: a layered DAG, 10 layers deep. Layer 0 holds a few non-eager sources (publishers trigger them
/// by hand): 3, 10 and 100 of them at 100, 10,000 and 100,000 products. The other products are eager and
/// spread evenly over layers 1–9; each has 3 distinct parents: one in the layer just above (so the
/// layers are real) and two anywhere above it. That makes about 3 dependencies per data product.
/// Every eager product carries a small passthrough, as real ones do.
struct PlanFixture {
    static let layerCount = 10
    static let parentsPerProduct = 3
    static let actor = "benchmark"
    static let now = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z

    let size: Int
    let datasetId: UUID
    /// What `POST /api/plan` receives for a new dataset.
    let submission: PlanSubmission
    /// The submitted plan as stored, after every data product has succeeded once.
    let completedPlan: Plan
    /// Positions of the products in each layer.
    let layers: [Range<Int>]

    init(size: Int) {
        precondition(size >= 2 * Self.layerCount, "too few products for \(Self.layerCount) layers")
        self.size = size
        datasetId = Self.uuid(0xDA7A_5E7, UInt64(size))
        let sourceCount = max(3, size / 1_000)
        var layers = [0..<sourceCount]
        let rest = size - sourceCount
        for layer in 1..<Self.layerCount {
            let start = layers[layer - 1].upperBound
            let end = sourceCount + rest * layer / (Self.layerCount - 1)
            layers.append(start..<end)
        }
        self.layers = layers

        let ids = (0..<size).map { Self.uuid(UInt64(size), UInt64($0)) }
        var products: [PlanSubmission.DataProduct] = []
        products.reserveCapacity(size)
        for position in 0..<size {
            let isSource = position < sourceCount
            products.append(
                PlanSubmission.DataProduct(
                    id: ids[position], compute: position.isMultiple(of: 3) ? .dbxaas : .cams,
                    name: isSource ? "source-\(position)" : "product-\(position)", version: "1.\(position % 7).0",
                    eager: !isSource,
                    passthrough: isSource ? nil : .object(["job": .string("job-\(position)"), "priority": .integer(position % 5)])))
        }
        var random = SplitMix64(seed: UInt64(size))
        var dependencies: [PlanSubmission.Dependency] = []
        dependencies.reserveCapacity(size * Self.parentsPerProduct)
        for layer in 1..<Self.layerCount {
            let above = layers[layer - 1]
            for child in layers[layer] {
                var parents: [Int] = [above.lowerBound + Int(random.next() % UInt64(above.count))]
                let wanted = min(Self.parentsPerProduct, above.upperBound)
                while parents.count < wanted {
                    let parent = Int(random.next() % UInt64(above.upperBound))
                    if !parents.contains(parent) { parents.append(parent) }
                }
                for parent in parents {
                    dependencies.append(PlanSubmission.Dependency(parentId: ids[parent], childId: ids[child]))
                }
            }
        }
        submission = PlanSubmission(datasetId: datasetId, dataProducts: products, dependencies: dependencies)

        var plan = try! PlanMutation.submit(submission)
            .apply(to: nil, datasetId: datasetId, by: Self.actor, at: Self.now).plan
        for position in plan.dataProducts.indices {
            plan.dataProducts[position].state = .success
            plan.dataProducts[position].runId = Self.uuid(0x7E57, UInt64(position))
            plan.dataProducts[position].link = "https://compute.example/runs/\(position)"
        }
        completedPlan = plan
    }

    /// A mid-run plan for the trigger rule: one product in the middle layer (the one with the most
    /// children) is running, everything downstream of it waits, everything else has succeeded.
    /// Returns it and the running product's id.
    func planWithOneRunningParent() -> (plan: Plan, runningId: UUID) {
        var plan = completedPlan
        let graph = PlanGraph(plan)
        let running = layers[Self.layerCount / 2].max { graph.children(of: $0).count < graph.children(of: $1).count }!
        for position in graph.downstream(of: [running]) {
            plan.dataProducts[position].state = .waiting
            plan.dataProducts[position].runId = nil
            plan.dataProducts[position].link = nil
        }
        plan.dataProducts[running].state = .running
        return (plan, plan.dataProducts[running].id)
    }

    /// The source whose clearing resets the most products downstream (the first one, by construction).
    var sourceToClear: UUID { completedPlan.dataProducts[layers[0].lowerBound].id }

    /// A UUID from two numbers, so every run builds the same plan.
    static func uuid(_ high: UInt64, _ low: UInt64) -> UUID {
        let h = high.bigEndian
        let l = low.bigEndian
        return withUnsafeBytes(of: (h, l)) { bytes in
            UUID(uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        }
    }
}

/// A small seeded generator (SplitMix64), so the plan's edges are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
