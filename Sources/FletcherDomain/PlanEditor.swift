import Foundation

/// Applies the orchestration rules to a copy of a plan, stamping and remembering every row it changes.
struct PlanEditor {
    private(set) var plan: Plan
    private let actor: String
    private let now: Date
    /// The time timers are armed from: the mutation's time, or a firing's due time when that is
    /// later (`PlanMutation.fireDue`: the sweeper's clock).
    var timerBase: Date
    private let policy: OrchestrationPolicy
    private let isNewDataset: Bool
    private var transitions: [StateTransition] = []
    private var cancellations: [Cancellation] = []
    private var productChanged: [Bool]
    private var dependencyChanged: [Bool]
    private var datasetChanged = false
    /// Rows in the plan the editor started from.
    private let baseCounts: (products: Int, dependencies: Int)
    /// Whether the dataset was paused before the change (nil: it did not exist).
    private let pausedBefore: Bool?

    init(_ plan: consuming Plan, by actor: String, at now: Date, policy: OrchestrationPolicy, isNewDataset: Bool = false) {
        self.productChanged = [Bool](repeating: false, count: plan.dataProducts.count)
        self.dependencyChanged = [Bool](repeating: false, count: plan.dependencies.count)
        self.baseCounts = (plan.dataProducts.count, plan.dependencies.count)
        self.pausedBefore = isNewDataset ? nil : plan.dataset.paused
        self.plan = plan
        self.actor = actor
        self.now = now
        self.timerBase = now
        self.policy = policy
        self.isNewDataset = isNewDataset
        self.datasetChanged = isNewDataset
    }

    /// The position of an enabled data product; 404 when unknown, 403 when disabled.
    func enabledPosition(of id: UUID, in graph: PlanGraph) throws(PlanError) -> Int {
        guard let position = graph.index[id] else {
            throw .dataProductNotFound(datasetId: plan.dataset.id, id: id)
        }
        guard plan.dataProducts[position].state != .disabled else { throw .dataProductDisabled(id) }
        return position
    }

    mutating func setState(_ state: DataProductState, at position: Int, reason: TransitionReason) {
        record(state, at: position, reason: reason)
        touchProduct(at: position)
    }

    /// docs/RULES.md rule 5: the reported state, run id, link and passback (absent ones become null).
    /// A report of `failed` on a product already `failed` is a new failure: its pending retry, if any,
    /// is decided again (docs/RULES.md rule 23).
    mutating func report(_ update: StateUpdate, at position: Int, reason: TransitionReason = .api) {
        let again = plan.dataProducts[position].state == update.state
        plan.dataProducts[position].runId = update.runId
        plan.dataProducts[position].link = update.link
        plan.dataProducts[position].passback = update.passback
        record(update.state, at: position, reason: reason)
        if again && update.state == .failed { armRetry(at: position, reason: reason) }
        touchProduct(at: position)
    }

    /// docs/RULES.md rule 24: a product past its time limit fails with a passback saying so; its
    /// downstream reset and the trigger rule are the caller's.
    mutating func timeOut(at position: Int) {
        let product = plan.dataProducts[position]
        let phase = product.state
        let limit = policy.effective(for: product).limit(in: phase)
        plan.dataProducts[position].passback = JSONValue(
            canonicalText: #"{"fletcher_timeout":{"limit_s":\#(limit.map(JSONValue.numberText) ?? "null"),"phase":"\#(phase.rawValue)","try":\#(product.tryNumber)}}"#)
        record(.failed, at: position, reason: .timeout)
        touchProduct(at: position)
    }

    /// docs/RULES.md rule 23: a due retry of a failed product queues it as a new try when its parents
    /// all succeeded, and is dropped otherwise (the product stays `failed`). The caller checks that
    /// the retry is due and the dataset not paused.
    mutating func fireRetry(at position: Int, in graph: PlanGraph) {
        if graph.parents(of: position).allSatisfy({ plan.dataProducts[$0].state == .success }) {
            setState(.queued, at: position, reason: .retry)
        } else {
            plan.dataProducts[position].retryAt = nil
            touchProduct(at: position)
        }
    }

    /// Sets a state, remembering the change (if it is one) for the history, and what it does to the
    /// product's tries, timers and its current try at the platform (docs/RULES.md rules 22–25).
    private mutating func record(_ state: DataProductState, at position: Int, reason: TransitionReason) {
        let from = plan.dataProducts[position].state
        guard from != state else { return }
        plan.dataProducts[position].state = state
        changeTimers(at: position, from: from, reason: reason)
        let product = plan.dataProducts[position]
        transitions.append(
            StateTransition(
                dataProductId: product.id, from: from, to: state, reason: reason, runId: product.runId, link: product.link,
                tryNumber: product.tryNumber, triggerId: product.triggerId))
    }

    /// What a product's change of state from `from` to its state now does to its try, its timers and
    /// its try at the platform: queueing starts a try and arms the queued timeout; `running` arms the
    /// running one; `failed` may arm a retry; every change ends the timers of the state left; leaving
    /// `queued` or `running` by a clear, disable, downstream reset or timeout cancels the try at a
    /// platform that takes cancels.
    private mutating func changeTimers(at position: Int, from: DataProductState, reason: TransitionReason) {
        let product = plan.dataProducts[position]
        let effective = policy.effective(for: product)
        if from == .queued || from == .running, let triggerId = product.triggerId, effective.cancels,
            let why = Self.cancelReason(to: product.state, reason: reason)
        {
            cancellations.append(
                Cancellation(
                    dataProductId: product.id, compute: product.compute, triggerId: triggerId, tryNumber: product.tryNumber,
                    runId: product.runId, reason: why))
        }
        plan.dataProducts[position].retryAt = nil
        plan.dataProducts[position].timeoutAt = effective.limit(in: product.state).map { timerBase.addingTimeInterval($0) }
        switch product.state {
        case .queued:
            plan.dataProducts[position].tryNumber += 1
            plan.dataProducts[position].triggerId = UUID.random()
            plan.dataProducts[position].retriesUsed = reason == .retry ? product.retriesUsed + 1 : 0
        case .failed:
            armRetry(at: position, reason: reason)
        case .waiting, .running, .success, .disabled:
            break
        }
    }

    /// A failure reported by a platform or a timeout retries the product while retries remain; a
    /// failed dispatch does not (the platform never had the job: docs/RULES.md rule 19).
    private mutating func armRetry(at position: Int, reason: TransitionReason) {
        let product = plan.dataProducts[position]
        let retry = policy.effective(for: product).retry
        guard reason == .api || reason == .timeout, product.retriesUsed < retry.max else {
            plan.dataProducts[position].retryAt = nil
            return
        }
        let wait = retry.wait(beforeRetry: product.retriesUsed + 1, jitter: RetryPolicy.jitter(of: product.triggerId))
        plan.dataProducts[position].retryAt = timerBase.addingTimeInterval(wait)
    }

    /// Why leaving `queued` or `running` for `state` cancels the try at its platform; nil when it
    /// does not (the platform's own report, or a failed dispatch: it never had the job).
    private static func cancelReason(to state: DataProductState, reason: TransitionReason) -> CancelReason? {
        switch (reason, state) {
        case (.timeout, _): .timeout
        case (.downstreamReset, _): .downstreamReset
        case (.api, .waiting): .clear
        case (.api, .disabled): .disable
        default: nil
        }
    }

    mutating func setPaused(_ paused: Bool) {
        plan.dataset.paused = paused
        touchDataset()
    }

    /// docs/RULES.md rule 2: everything reachable downstream of `roots` that is not waiting goes back to waiting.
    mutating func resetDownstream(of roots: [Int], in graph: PlanGraph) {
        for position in graph.downstream(of: roots) where plan.dataProducts[position].state != .waiting {
            setState(.waiting, at: position, reason: .downstreamReset)
        }
    }

    /// docs/RULES.md rule 1: unless paused, every waiting eager product whose parents all succeeded becomes queued.
    mutating func applyTriggerRule(_ graph: PlanGraph) {
        guard !plan.dataset.paused else { return }
        for position in plan.dataProducts.indices where graph.included[position] {
            let product = plan.dataProducts[position]
            guard product.state == .waiting, product.eager else { continue }
            if graph.parents(of: position).allSatisfy({ plan.dataProducts[$0].state == .success }) {
                setState(.queued, at: position, reason: .triggerRule)
            }
        }
    }

    /// docs/RULES.md rule 3: upsert the submitted dataset extra, data products and dependencies.
    mutating func merge(_ submission: consuming PlanSubmission, productIndex: ProductIndex) {
        plan.dataset.extra = submission.datasetExtra
        touchDataset()
        if plan.dataProducts.isEmpty {
            // A new plan: its rows are all appended, to arrays made at their size (grown by
            // doubling, an array holds up to twice its rows' room, and copies them as it grows).
            plan.dataProducts.reserveCapacity(submission.dataProducts.count)
            plan.dependencies.reserveCapacity(submission.dependencies.count)
            productChanged.reserveCapacity(submission.dataProducts.count)
            dependencyChanged.reserveCapacity(submission.dependencies.count)
            transitions.reserveCapacity(submission.dataProducts.count)
        }
        for submitted in submission.dataProducts {
            if let position = productIndex[submitted.id] {
                plan.dataProducts[position].compute = submitted.compute
                plan.dataProducts[position].name = submitted.name
                plan.dataProducts[position].version = submitted.version
                plan.dataProducts[position].eager = submitted.eager
                plan.dataProducts[position].passthrough = submitted.passthrough
                plan.dataProducts[position].extra = submitted.extra
                plan.dataProducts[position].limits = submitted.limits
                // A resubmission cancels a pending retry (docs/RULES.md rule 23).
                plan.dataProducts[position].retryAt = nil
                touchProduct(at: position)
            } else {
                plan.dataProducts.append(
                    DataProduct(
                        id: submitted.id, compute: submitted.compute, name: submitted.name, version: submitted.version,
                        eager: submitted.eager, passthrough: submitted.passthrough, extra: submitted.extra,
                        modifiedBy: actor, modifiedDate: now, limits: submitted.limits))
                productChanged.append(true)
                transitions.append(StateTransition(dataProductId: submitted.id, from: nil, to: .waiting, reason: .api))
            }
        }
        // Through them: the submitted products (10 MB for 100,000) go before the dependencies' index
        // is built beside the submitted dependencies.
        submission.dataProducts = []
        let stored = StoredDependencies(plan.dependencies, productIndex: productIndex)
        for submitted in submission.dependencies {
            if let position = stored.position(of: submitted.parentId, submitted.childId, productIndex: productIndex) {
                plan.dependencies[position].extra = submitted.extra
                plan.dependencies[position].modifiedBy = actor
                plan.dependencies[position].modifiedDate = now
                dependencyChanged[position] = true
            } else {
                plan.dependencies.append(
                    Dependency(
                        parentId: submitted.parentId, childId: submitted.childId, extra: submitted.extra,
                        modifiedBy: actor, modifiedDate: now))
                dependencyChanged.append(true)
            }
        }
    }

    mutating func finish() -> PlanChange {
        plan.dataset.nextTimerAt = plan.earliestTimer
        let changedDependencies = dependencyChanged.indices.filter { dependencyChanged[$0] }
        // The rules' graph holds while no row was added, no dependency rewritten and no product
        // disabled or enabled.
        let keepsGraph =
            plan.dataProducts.count == baseCounts.products && plan.dependencies.count == baseCounts.dependencies
            && changedDependencies.isEmpty && !transitions.contains { $0.from == .disabled || $0.to == .disabled }
        return PlanChange(
            plan: plan, actor: actor, isNewDataset: isNewDataset, datasetChanged: datasetChanged,
            changedProducts: productChanged.indices.filter { productChanged[$0] }, changedDependencies: changedDependencies,
            storedCounts: baseCounts, transitions: transitions, keepsGraph: keepsGraph, cancellations: cancellations,
            pausedBefore: pausedBefore)
    }

    private mutating func touchProduct(at position: Int) {
        plan.dataProducts[position].modifiedBy = actor
        plan.dataProducts[position].modifiedDate = now
        productChanged[position] = true
    }

    private mutating func touchDataset() {
        plan.dataset.modifiedBy = actor
        plan.dataset.modifiedDate = now
        datasetChanged = true
    }
}

/// The stored dependencies' positions by their ends, for a merge to find the rows a submission
/// rewrites: each edge as its two products' positions in one integer, sorted. A dictionary by the
/// two ids takes 21 MB for a 100,000-product plan's 300,000 dependencies (its buckets, at most three
/// quarters full, 40 bytes each); these take 16 bytes an edge.
private struct StoredDependencies {
    private var edges: [(ends: UInt64, position: Int)] = []
    /// Edges whose ends are not both stored products (none in a consistent store).
    private var others: [Dependency.Key: Int] = [:]

    init(_ dependencies: [Dependency], productIndex: ProductIndex) {
        edges.reserveCapacity(dependencies.count)
        for (position, dependency) in dependencies.enumerated() {
            if let ends = Self.ends(dependency.parentId, dependency.childId, productIndex) {
                edges.append((ends, position))
            } else {
                others[dependency.key] = position
            }
        }
        edges.sort { $0.ends < $1.ends }
    }

    func position(of parentId: UUID, _ childId: UUID, productIndex: ProductIndex) -> Int? {
        guard let ends = Self.ends(parentId, childId, productIndex) else {
            return others[Dependency.Key(parentId: parentId, childId: childId)]
        }
        var low = 0
        var high = edges.count
        while low < high {
            let middle = (low + high) / 2
            if edges[middle].ends < ends { low = middle + 1 } else { high = middle }
        }
        return low < edges.count && edges[low].ends == ends ? edges[low].position : nil
    }

    private static func ends(_ parentId: UUID, _ childId: UUID, _ productIndex: ProductIndex) -> UInt64? {
        guard let parent = productIndex[parentId], let child = productIndex[childId] else { return nil }
        return UInt64(parent) << 32 | UInt64(child)
    }
}
