import Foundation

/// Applies the orchestration rules to a copy of a plan, stamping and remembering every row it changes.
struct PlanEditor {
    private(set) var plan: Plan
    private let actor: String
    /// The reason recorded for the states the request sets itself (`api` or `web`).
    let requestReason: TransitionReason
    private let now: Date
    /// The time timers are armed from: the mutation's time, or a firing's due time when that is
    /// later (`PlanMutation.fireDue`: the sweeper's clock).
    var timerBase: Date
    private let policy: OrchestrationPolicy
    private let isNewDataset: Bool
    private var transitions: [StateTransition] = []
    private var cancellations: [Cancellation] = []
    private var events: PlanEventLog
    /// A submission set a deadline: it may already be due when the change is finished.
    private var deadlinesSet = false
    private var productChanged: [Bool]
    private var dependencyChanged: [Bool]
    private var datasetChanged = false
    /// Rows in the plan the editor started from.
    private let baseCounts: (products: Int, dependencies: Int)

    init(
        _ plan: consuming Plan, by actor: String, via channel: RequestChannel = .api, at now: Date, policy: OrchestrationPolicy,
        isNewDataset: Bool = false
    ) {
        self.productChanged = [Bool](repeating: false, count: plan.dataProducts.count)
        self.dependencyChanged = [Bool](repeating: false, count: plan.dependencies.count)
        self.baseCounts = (plan.dataProducts.count, plan.dependencies.count)
        self.events = PlanEventLog(datasetId: plan.dataset.id, time: now)
        self.plan = plan
        self.actor = actor
        self.requestReason = channel.reason
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
    mutating func report(_ update: StateUpdate, at position: Int, reason: TransitionReason) {
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

    /// docs/RULES.md rule 32: a failed product retried by hand is queued at once as a new try. A
    /// pending automatic retry is the one used (it counts, as if its wait were over); with none
    /// pending, the retries start again from none used. The caller checks the state and the pause.
    mutating func retryNow(at position: Int) {
        let pending = plan.dataProducts[position].retryAt != nil
        let used = plan.dataProducts[position].retriesUsed
        setState(.queued, at: position, reason: requestReason)
        if pending { plan.dataProducts[position].retriesUsed = used + 1 }
    }

    /// Sets a state, remembering the change (if it is one) for the history, and what it does to the
    /// product's tries, timers and its current try at the platform (docs/RULES.md rules 22–25).
    private mutating func record(_ state: DataProductState, at position: Int, reason: TransitionReason) {
        let from = plan.dataProducts[position].state
        guard from != state else { return }
        plan.dataProducts[position].state = state
        let cancelled = cancellations.count
        changeTimers(at: position, from: from, reason: reason)
        let product = plan.dataProducts[position]
        let transition = StateTransition(
            dataProductId: product.id, from: from, to: state, reason: reason, runId: product.runId, link: product.link,
            tryNumber: product.tryNumber, triggerId: product.triggerId)
        transitions.append(transition)
        tell(transition, of: product)
        for cancellation in cancellations[cancelled...] {
            var data: [String: EventValue] = [
                "try": .integer(cancellation.tryNumber), "reason": .string(cancellation.reason.rawValue),
                "trigger_id": .string(cancellation.triggerId.uuidString.lowercased()),
            ]
            if let runId = cancellation.runId { data["run_id"] = .string(runId.uuidString.lowercased()) }
            events.add(.dataProductCancelled, product: product, data)
        }
    }

    /// The events a state change gives (docs/RULES.md rule 28): a failure (final unless it left a
    /// retry pending), a timeout (and its failure), a retry, a success (late by how long, when its
    /// deadline was missed).
    private mutating func tell(_ transition: StateTransition, of product: DataProduct) {
        var data = Self.eventData(of: transition)
        if policy.recordsRuns { tellRun(transition, of: product, data) }
        switch (transition.to, transition.reason) {
        case (.failed, let reason):
            if reason == .timeout { events.add(.dataProductTimedOut, product: product, data) }
            data["final"] = .bool(product.retryAt == nil)
            if let retryAt = product.retryAt { data["retry_at"] = .time(retryAt) }
            if policy.recordsRuns, let passback = product.passback {
                // What OpenLineage's error facet says: the passback, as far as it goes.
                data["error"] = .string(String(passback.text.prefix(Self.errorLength)))
            }
            if reason == .dispatch { events.add(.triggerUndeliverable, product: product, data) }
            events.add(.dataProductFailed, product: product, data)
        case (.queued, .retry):
            data["retries_used"] = .integer(product.retriesUsed)
            events.add(.dataProductRetrying, product: product, data)
        case (.success, _):
            if product.deadlineMissed == true, let deadline = product.deadline {
                data["deadline"] = .time(deadline)
                data["late_by_s"] = .number(max(0, now.timeIntervalSince(deadline)))
            }
            events.add(.dataProductSucceeded, product: product, data)
        default:
            break
        }
    }

    /// The longest passback text a failure's run event carries.
    static let errorLength = 4096

    /// The data of a change's events: its `try` and `reason`, and its try's `trigger_id` while the
    /// try is live — the change starts it (to `queued`) or ends it (from `queued` or `running`). A
    /// report after the try ended (a success after a final failure or a timeout) names none: that
    /// try's run is over and gets no second end (docs/RULES.md rules 28 and 30).
    private static func eventData(of transition: StateTransition) -> [String: EventValue] {
        var data = transition.eventData
        switch (transition.from, transition.to) {
        case (_, .queued), (.queued?, _), (.running?, _): break
        default: data["trigger_id"] = nil
        }
        return data
    }

    /// The run events of a state change (`PlanEventType.runEvents`), before the change's others:
    /// a try's start, its `running` (only a queued try's: a `running` report after the try ended
    /// starts no run), its end without a result.
    private mutating func tellRun(_ transition: StateTransition, of product: DataProduct, _ data: [String: EventValue]) {
        switch (transition.from, transition.to) {
        case (_, .queued):
            events.add(.dataProductQueued, product: product, data)
        case (.queued?, .running):
            events.add(.dataProductRunning, product: product, data)
        case (.queued?, .waiting), (.queued?, .disabled), (.running?, .waiting), (.running?, .disabled):
            events.add(.dataProductAborted, product: product, data)
        default:
            break
        }
    }

    /// What a product's change of state from `from` to its state now does to its try, its timers and
    /// its try at the platform: queueing starts a try and arms the queued timeout; `running` arms the
    /// running one (and, unless the product was queued, leaves it outside any try); `failed` may arm a retry; every change ends the timers of the state left; leaving
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
        case .running where from != .queued:
            // Reported running outside a try (after it failed, succeeded or was cleared): the
            // platform holds no try of Fletcher's, so there is none to name, cancel or end.
            plan.dataProducts[position].triggerId = nil
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
        case (.api, .waiting), (.web, .waiting): .clear
        case (.api, .disabled), (.web, .disabled): .disable
        default: nil
        }
    }

    mutating func setPaused(_ paused: Bool) {
        guard plan.dataset.paused != paused else { return }
        plan.dataset.paused = paused
        touchDataset()
        events.add(paused ? .datasetPaused : .datasetUnpaused)
    }

    /// docs/RULES.md rule 27: every deadline reached by `asOf` and not yet decided is decided — met
    /// when its product is `success` (or disabled), missed otherwise, with one `late` event; the
    /// dataset's is missed when any enabled product is not `success`. Looks at the products only
    /// when the plan's earliest timer is due, or when `always` (a submission may set a deadline
    /// already past).
    mutating func decideDeadlines(asOf: Date, always: Bool = false) {
        guard always || (plan.dataset.nextTimerAt.map { $0 <= asOf } ?? false) else { return }
        for position in plan.dataProducts.indices {
            let product = plan.dataProducts[position]
            guard product.deadlineMissed == nil, let deadline = product.deadline, deadline <= asOf else { continue }
            let missed = product.state != .success && product.state != .disabled
            plan.dataProducts[position].deadlineMissed = missed
            touchProduct(at: position)
            if missed {
                var data: [String: EventValue] = ["deadline": .time(deadline), "state": .string(product.state.rawValue)]
                if product.tryNumber > 0 { data["try"] = .integer(product.tryNumber) }
                events.add(.dataProductLate, product: product, data)
            }
        }
        if plan.dataset.deadlineMissed == nil, let deadline = plan.dataset.deadline, deadline <= asOf {
            let unfinished = plan.dataProducts.count { $0.state != .success && $0.state != .disabled }
            plan.dataset.deadlineMissed = unfinished > 0
            touchDataset()
            if unfinished > 0 {
                events.add(.datasetLate, ["deadline": .time(deadline), "unfinished": .integer(unfinished)])
            }
        }
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
        if plan.dataset.deadline != submission.datasetDeadline {
            // A new deadline is armed again (docs/RULES.md rule 27).
            plan.dataset.deadline = submission.datasetDeadline
            plan.dataset.deadlineMissed = nil
            deadlinesSet = deadlinesSet || submission.datasetDeadline != nil
        }
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
                if plan.dataProducts[position].deadline != submitted.deadline {
                    plan.dataProducts[position].deadline = submitted.deadline
                    plan.dataProducts[position].deadlineMissed = nil
                    deadlinesSet = deadlinesSet || submitted.deadline != nil
                }
                // A resubmission cancels a pending retry (docs/RULES.md rule 23).
                plan.dataProducts[position].retryAt = nil
                touchProduct(at: position)
            } else {
                plan.dataProducts.append(
                    DataProduct(
                        id: submitted.id, compute: submitted.compute, name: submitted.name, version: submitted.version,
                        eager: submitted.eager, passthrough: submitted.passthrough, extra: submitted.extra,
                        modifiedBy: actor, modifiedDate: now, limits: submitted.limits, deadline: submitted.deadline))
                deadlinesSet = deadlinesSet || submitted.deadline != nil
                productChanged.append(true)
                transitions.append(StateTransition(dataProductId: submitted.id, from: nil, to: .waiting, reason: requestReason))
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
        // A deadline a submission set may be past already: it is decided on the merged plan.
        if deadlinesSet { decideDeadlines(asOf: timerBase, always: true) }
        if transitions.contains(where: { $0.to == .success || $0.to == .disabled }), becameSucceeded {
            var data: [String: EventValue] = [:]
            if plan.dataset.deadlineMissed == true, let deadline = plan.dataset.deadline {
                data["deadline"] = .time(deadline)
                data["late_by_s"] = .number(max(0, now.timeIntervalSince(deadline)))
            }
            events.add(.datasetSucceeded, data)
        }
        let numbered = events.numbered(after: plan.dataset.eventSequence)
        plan.dataset.eventSequence = numbered.last
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
            events: numbered.events)
    }

    /// Every enabled product is `success` after the change and was not before it (a new dataset
    /// had nothing before it; a plan with no enabled product never succeeds). A product's state
    /// before the change is its first state change's `from` (nil: created by this change), else
    /// its state now.
    private var becameSucceeded: Bool {
        var first: [UUID: DataProductState?] = [:]
        for transition in transitions where first[transition.dataProductId] == nil {
            first[transition.dataProductId] = .some(transition.from)
        }
        var enabledNow = 0
        var enabledBefore = 0
        var succeededBefore = true
        for product in plan.dataProducts {
            if product.state != .disabled {
                guard product.state == .success else { return false }
                enabledNow += 1
            }
            let before: DataProductState? = first[product.id] ?? product.state
            guard let before else {
                succeededBefore = false
                continue
            }
            if before != .disabled {
                enabledBefore += 1
                if before != .success { succeededBefore = false }
            }
        }
        return enabledNow > 0 && (isNewDataset || enabledBefore == 0 || !succeededBefore)
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
