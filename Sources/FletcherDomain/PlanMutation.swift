public import Foundation

/// A change to one dataset's plan, as the API requests it (docs/RULES.md rules 3–8), or as the
/// dispatcher makes it when it gives up on a trigger (rule 19).
public enum PlanMutation: Sendable, Hashable {
    /// Merge a submission into the stored plan, creating the dataset if needed.
    case submit(PlanSubmission)
    /// Report states of data products.
    case update([StateUpdate])
    /// Set data products back to `waiting`.
    case clear([UUID])
    /// Take data products out of the plan.
    case disable([UUID])
    /// Queue failed data products again now, as new tries (docs/RULES.md rule 32).
    case retryNow([UUID])
    case pause
    case unpause
    /// A queued data product's trigger could not be delivered: it fails through the normal rules
    /// (downstream reset, then the trigger rule) with `passback`, unless it left `queued` meanwhile.
    case dispatchFailed(dataProductId: UUID, passback: JSONValue)
    /// Fletcher's own timers: every timeout due at `asOf` fires (docs/RULES.md rule 24), then every
    /// retry due at `asOf` unless the dataset is paused (rule 23). Each fires once: a fired timer is
    /// gone from the plan it writes, so another process firing the same plan finds nothing due.
    case fireDue(asOf: Date)

    /// Whether the mutation may create its dataset; the others answer 404 for an unknown one.
    public var createsDataset: Bool {
        if case .submit = self { true } else { false }
    }

    /// The checks that need nothing stored, made before the dataset is even read, so their 400s
    /// come before any 404 (docs/RULES.md rule 11).
    public func validateRequest() throws(PlanError) {
        switch self {
        case .submit(let submission):
            var ids = Set<UUID>(minimumCapacity: submission.dataProducts.count)
            for (index, product) in submission.dataProducts.enumerated() {
                guard ids.insert(product.id).inserted else { throw .duplicateDataProduct(product.id) }
                if product.limits != .none, let (field, reason) = product.limits.invalidField() {
                    throw .invalidLimit(index: index, id: product.id, field: field, reason: reason)
                }
            }
            var edges = Set<Dependency.Key>(minimumCapacity: submission.dependencies.count)
            for dependency in submission.dependencies
            where !edges.insert(.init(parentId: dependency.parentId, childId: dependency.childId)).inserted {
                throw .duplicateDependency(parentId: dependency.parentId, childId: dependency.childId)
            }
        case .update(let updates):
            for update in updates where !update.state.isReportable {
                throw .unreportableState(id: update.id, state: update.state)
            }
        case .clear, .disable, .retryNow, .pause, .unpause, .dispatchFailed, .fireDue:
            break
        }
    }

    /// Applies the mutation to the stored plan (nil when the dataset does not exist yet) and returns
    /// the new plan with exactly the rows that changed. Throws, changing nothing, when a rule refuses it.
    ///
    /// Every row written is stamped with `actor` and `now`; the states the request sets itself are
    /// recorded with `channel`'s reason. The request checks run first unless the
    /// caller says it has just run them (`requestChecked`: `Store.apply` runs them before reading
    /// the dataset, to order its answers; for a 100,000-product submission they build a 17 MB set
    /// of dependencies, which would otherwise be built again beside the stored plan). A stored plan
    /// held nowhere else is edited in place (a 100,000-product plan is 45 MB of rows, otherwise
    /// copied whole by the first change). `graph` is the rules' graph of `stored` (`PlanGraph(stored)`)
    /// when the caller keeps one (the plan cache, for big plans); otherwise it is built when needed.
    /// `policy` says how failed and stuck products are retried, timed out and cancelled.
    public consuming func apply(
        to stored: consuming Plan?, graph storedGraph: PlanGraph? = nil, datasetId: UUID, by actor: String,
        via channel: RequestChannel = .api, at now: Date, policy: OrchestrationPolicy = .none, requestChecked: Bool = false
    ) throws(PlanError) -> PlanChange {
        if !requestChecked { try validateRequest() }
        if case .submit = self {
            // Handed on: held nowhere else, the submission is let go of once merged.
            guard case .submit(let submission) = consume self else { preconditionFailure("a submission") }
            return try Self.submit(
                consume submission, to: stored.take(), graph: storedGraph, by: actor, via: channel, at: now, policy: policy)
        }
        guard let plan = stored.take() else { throw .datasetNotFound(datasetId) }
        var editor = PlanEditor(consume plan, by: actor, via: channel, at: now, policy: policy)
        // Deadlines reached before this change are decided on the plan as it was (docs/RULES.md
        // rule 27); a firing decides them at its own clock.
        if case .fireDue(let asOf) = self {
            editor.decideDeadlines(asOf: max(now, asOf))
        } else {
            editor.decideDeadlines(asOf: now)
        }
        // Read from the editor's plan: until its first change, it is the stored one.
        switch self {
        case .submit:
            preconditionFailure("handled above")
        case .update(let updates):
            let graph = storedGraph ?? PlanGraph(editor.plan)
            var roots: [Int] = []
            roots.reserveCapacity(updates.count)
            for update in updates {
                let position = try editor.enabledPosition(of: update.id, in: graph)
                let product = editor.plan.dataProducts[position]
                if let triggerId = update.triggerId, triggerId != product.triggerId {
                    throw .staleReport(
                        id: update.id, triggerId: triggerId, currentTry: product.tryNumber, currentTriggerId: product.triggerId)
                }
                editor.report(update, at: position, reason: editor.requestReason)
                roots.append(position)
            }
            editor.resetDownstream(of: roots, in: graph)
            editor.applyTriggerRule(graph)
        case .clear(let ids):
            let graph = storedGraph ?? PlanGraph(editor.plan)
            var roots: [Int] = []
            roots.reserveCapacity(ids.count)
            for id in ids {
                let position = try editor.enabledPosition(of: id, in: graph)
                editor.setState(.waiting, at: position, reason: editor.requestReason)
                roots.append(position)
            }
            editor.resetDownstream(of: roots, in: graph)
            editor.applyTriggerRule(graph)
        case .disable(let ids):
            let before = storedGraph ?? PlanGraph(editor.plan)
            for id in ids {
                let position = try editor.enabledPosition(of: id, in: before)
                editor.setState(.disabled, at: position, reason: editor.requestReason)
            }
            editor.applyTriggerRule(PlanGraph(editor.plan))
        case .retryNow(let ids):
            let graph = storedGraph ?? PlanGraph(editor.plan)
            guard !editor.plan.dataset.paused else { throw .retryWhilePaused(datasetId) }
            var seen = Set<UUID>()
            for id in ids where seen.insert(id).inserted {
                let position = try editor.enabledPosition(of: id, in: graph)
                let state = editor.plan.dataProducts[position].state
                guard state == .failed else { throw .notFailed(id: id, state: state) }
                editor.retryNow(at: position)
            }
            editor.applyTriggerRule(graph)
        case .pause:
            guard !editor.plan.dataset.paused else { throw .alreadyPaused(datasetId) }
            editor.setPaused(true)
        case .unpause:
            guard editor.plan.dataset.paused else { throw .notPaused(datasetId) }
            let graph = storedGraph ?? PlanGraph(editor.plan)
            editor.setPaused(false)
            editor.applyTriggerRule(graph)
        case .dispatchFailed(let id, let passback):
            let graph = storedGraph ?? PlanGraph(editor.plan)
            guard let position = graph.index[id], editor.plan.dataProducts[position].state == .queued else { break }
            let product = editor.plan.dataProducts[position]
            editor.report(
                StateUpdate(id: id, state: .failed, runId: product.runId, link: product.link, passback: passback),
                at: position, reason: .dispatch)
            editor.resetDownstream(of: [position], in: graph)
            editor.applyTriggerRule(graph)
        case .fireDue(let asOf):
            // What a firing arms, it arms from the due time it fired at (or later).
            editor.timerBase = max(now, asOf)
            let graph = storedGraph ?? PlanGraph(editor.plan)
            var timedOut: [Int] = []
            for position in editor.plan.dataProducts.indices where graph.included[position] {
                let product = editor.plan.dataProducts[position]
                guard let due = product.timeoutAt, due <= asOf, product.state == .queued || product.state == .running else {
                    continue
                }
                editor.timeOut(at: position)
                timedOut.append(position)
            }
            editor.resetDownstream(of: timedOut, in: graph)
            if !editor.plan.dataset.paused {
                for position in editor.plan.dataProducts.indices where graph.included[position] {
                    let product = editor.plan.dataProducts[position]
                    guard let due = product.retryAt, due <= asOf, product.state == .failed else { continue }
                    editor.fireRetry(at: position, in: graph)
                }
            }
            editor.applyTriggerRule(graph)
        }
        return editor.finish()
    }

    private static func submit(
        _ submission: consuming PlanSubmission, to stored: consuming Plan?, graph storedGraph: PlanGraph?, by actor: String,
        via channel: RequestChannel, at now: Date, policy: OrchestrationPolicy
    ) throws(PlanError) -> PlanChange {
        // A kept graph has the stored products' index.
        let storedIndex = storedGraph?.index ?? ProductIndex(stored?.dataProducts ?? [])
        let isNewDataset = stored == nil
        let base =
            stored.take()
            ?? Plan(
                dataset: Dataset(id: submission.datasetId, paused: false, extra: nil, modifiedBy: actor, modifiedDate: now),
                dataProducts: [], dependencies: [])
        var editor = PlanEditor(consume base, by: actor, via: channel, at: now, policy: policy, isNewDataset: isNewDataset)
        editor.decideDeadlines(asOf: now)
        // Until the merge, the editor's plan is the stored one.
        let submittedIds = ProductIndex(ids: submission.dataProducts.map(\.id))
        func isStoredDisabled(_ id: UUID) -> Bool {
            storedIndex[id].map { editor.plan.dataProducts[$0].state == .disabled } ?? false
        }
        func isKnown(_ id: UUID) -> Bool {
            submittedIds.contains(id) || (storedIndex[id] != nil && !isStoredDisabled(id))
        }
        for dependency in submission.dependencies {
            if !isKnown(dependency.parentId) { throw .unknownDependencyEndpoint(dependency.parentId) }
            if !isKnown(dependency.childId) { throw .unknownDependencyEndpoint(dependency.childId) }
        }
        let resubmitsDisabled = submission.dataProducts.contains { isStoredDisabled($0.id) }
        // Merged, the submission's rows (23 MB for 100,000 products) go before the graph is built
        // and checked: the merge lets each array go once it is through it.
        editor.merge(consume submission, productIndex: storedIndex)

        // The union of the stored enabled graph and everything submitted must be acyclic; products
        // that stay disabled after the merge are outside the graph the rules use from here on. With
        // no product added, the stored plan's index is the merged one's (rows are only appended).
        let unionIndex =
            editor.plan.dataProducts.count == storedIndex.count ? storedIndex : ProductIndex(editor.plan.dataProducts)
        let union = PlanGraph(products: editor.plan.dataProducts, index: unionIndex, dependencies: editor.plan.dependencies) {
            $0.state != .disabled || submittedIds.contains($0.id)
        }
        if let cycle = union.findCycle() {
            throw .cycle(cycle.map { editor.plan.dataProducts[$0].id })
        }
        editor.applyTriggerRule(resubmitsDisabled ? PlanGraph(editor.plan, index: unionIndex) : union)
        return editor.finish()
    }
}
