public import Foundation

/// A change to one dataset's plan, as the API requests it (SPEC §2 rules 3–8).
public enum PlanMutation: Sendable, Hashable {
    /// Merge a submission into the stored plan, creating the dataset if needed.
    case submit(PlanSubmission)
    /// Report states of data products.
    case update([StateUpdate])
    /// Set data products back to `waiting`.
    case clear([UUID])
    /// Take data products out of the plan.
    case disable([UUID])
    case pause
    case unpause
    /// A queued data product's trigger could not be delivered: it fails through the normal rules
    /// (downstream reset, then the trigger rule) with `passback`, unless it left `queued` meanwhile.
    case dispatchFailed(dataProductId: UUID, passback: JSONValue)

    /// Whether the mutation may create its dataset; the others answer 404 for an unknown one.
    public var createsDataset: Bool {
        if case .submit = self { true } else { false }
    }

    /// The checks that need nothing stored, made before the dataset is even read, so their 400s
    /// come before any 404 (SPEC §2 rules 4 and 5).
    public func validateRequest() throws(PlanError) {
        switch self {
        case .submit(let submission):
            var ids = Set<UUID>(minimumCapacity: submission.dataProducts.count)
            for product in submission.dataProducts where !ids.insert(product.id).inserted {
                throw .duplicateDataProduct(product.id)
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
        case .clear, .disable, .pause, .unpause, .dispatchFailed:
            break
        }
    }

    /// Applies the mutation to the stored plan (nil when the dataset does not exist yet) and returns
    /// the new plan with exactly the rows that changed. Throws, changing nothing, when a rule refuses it.
    ///
    /// Every row written is stamped with `actor` and `now`. The request checks run first (again, if
    /// the caller already ran them to order its answers), so no caller can skip them.
    public func apply(to stored: Plan?, datasetId: UUID, by actor: String, at now: Date) throws(PlanError) -> PlanChange {
        try validateRequest()
        if case .submit(let submission) = self {
            return try Self.submit(submission, to: stored, by: actor, at: now)
        }
        guard let stored else { throw .datasetNotFound(datasetId) }
        var editor = PlanEditor(stored, by: actor, at: now)
        switch self {
        case .submit:
            preconditionFailure("handled above")
        case .update(let updates):
            let graph = stored.rulesGraph
            var roots: [Int] = []
            roots.reserveCapacity(updates.count)
            for update in updates {
                let position = try editor.enabledPosition(of: update.id, in: graph)
                editor.report(update, at: position)
                roots.append(position)
            }
            editor.resetDownstream(of: roots, in: graph)
            editor.applyTriggerRule(graph)
        case .clear(let ids):
            let graph = stored.rulesGraph
            var roots: [Int] = []
            roots.reserveCapacity(ids.count)
            for id in ids {
                let position = try editor.enabledPosition(of: id, in: graph)
                editor.setState(.waiting, at: position, reason: .api)
                roots.append(position)
            }
            editor.resetDownstream(of: roots, in: graph)
            editor.applyTriggerRule(graph)
        case .disable(let ids):
            let before = stored.rulesGraph
            for id in ids {
                let position = try editor.enabledPosition(of: id, in: before)
                editor.setState(.disabled, at: position, reason: .api)
            }
            editor.applyTriggerRule(PlanGraph(editor.plan))
        case .pause:
            guard !stored.dataset.paused else { throw .alreadyPaused(datasetId) }
            editor.setPaused(true)
        case .unpause:
            guard stored.dataset.paused else { throw .notPaused(datasetId) }
            editor.setPaused(false)
            editor.applyTriggerRule(stored.rulesGraph)
        case .dispatchFailed(let id, let passback):
            let graph = stored.rulesGraph
            guard let position = graph.index[id], stored.dataProducts[position].state == .queued else { break }
            let product = stored.dataProducts[position]
            editor.report(
                StateUpdate(id: id, state: .failed, runId: product.runId, link: product.link, passback: passback),
                at: position, reason: .dispatch)
            editor.resetDownstream(of: [position], in: graph)
            editor.applyTriggerRule(graph)
        }
        return editor.finish()
    }

    private static func submit(_ submission: PlanSubmission, to stored: Plan?, by actor: String, at now: Date) throws(PlanError) -> PlanChange {
        let storedIndex = stored.map { PlanGraph.positions(of: $0.dataProducts) } ?? [:]
        let submittedIds = Set(submission.dataProducts.map(\.id))
        func isKnown(_ id: UUID) -> Bool {
            if submittedIds.contains(id) { return true }
            guard let stored, let position = storedIndex[id] else { return false }
            return stored.dataProducts[position].state != .disabled
        }
        for dependency in submission.dependencies {
            if !isKnown(dependency.parentId) { throw .unknownDependencyEndpoint(dependency.parentId) }
            if !isKnown(dependency.childId) { throw .unknownDependencyEndpoint(dependency.childId) }
        }

        let base =
            stored
            ?? Plan(
                dataset: Dataset(id: submission.datasetId, paused: false, extra: nil, modifiedBy: actor, modifiedDate: now),
                dataProducts: [], dependencies: [])
        var editor = PlanEditor(base, by: actor, at: now, isNewDataset: stored == nil)
        editor.merge(submission, productIndex: storedIndex)

        // The union of the stored enabled graph and everything submitted must be acyclic; products
        // that stay disabled after the merge are outside the graph the rules use from here on.
        let union = PlanGraph(products: editor.plan.dataProducts, dependencies: editor.plan.dependencies) {
            $0.state != .disabled || submittedIds.contains($0.id)
        }
        if let cycle = union.findCycle() {
            throw .cycle(cycle.map { editor.plan.dataProducts[$0].id })
        }
        let resubmitsDisabled = submission.dataProducts.contains { product in
            storedIndex[product.id].map { base.dataProducts[$0].state == .disabled } ?? false
        }
        editor.applyTriggerRule(resubmitsDisabled ? PlanGraph(editor.plan) : union)
        return editor.finish()
    }
}
