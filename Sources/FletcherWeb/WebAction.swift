import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// What a signed-in service can do from the web UI (docs/RULES.md rule 32): each is a single-dataset
/// request of the API, through the same rules and with the same role, recorded with the `web`
/// channel.
enum WebAction: Sendable, Hashable {
    /// A product and everything downstream back to `waiting` (rule 2, as `PUT …/clear`).
    case clear(UUID)
    /// A failed product queued again now, skipping any pending retry wait.
    case retry(UUID)
    /// A product taken out of the plan (as `DELETE /api/data_product/…`).
    case disable(UUID)
    case pause
    case unpause
    /// Every product `failed` when it is applied (checked in its transaction, as a bulk clear's filter).
    case clearFailed

    /// The form field `action`'s values.
    static let names = ["clear", "retry", "disable", "pause", "unpause", "clear_failed"]

    /// A posted form's action: nil with what is wrong when its fields are not one.
    static func parse(_ form: FormQuery) -> Result<WebAction, WebActionError> {
        guard let name = form["action"], !name.isEmpty else { return .failure(.init("The form names no action.")) }
        func product() -> Result<UUID, WebActionError> {
            guard let text = form["product"], !text.isEmpty else { return .failure(.init("The form names no data product.")) }
            guard let id = UUID(uuidString: text) else { return .failure(.init("'\(text)' is not a data product id.")) }
            return .success(id)
        }
        switch name {
        case "clear": return product().map(WebAction.clear)
        case "retry": return product().map(WebAction.retry)
        case "disable": return product().map(WebAction.disable)
        case "pause": return .success(.pause)
        case "unpause": return .success(.unpause)
        case "clear_failed": return .success(.clearFailed)
        default: return .failure(.init("'\(name)' is not an action; the actions are \(names.joined(separator: ", ")))."))
        }
    }

    var name: String {
        switch self {
        case .clear: "clear"
        case .retry: "retry"
        case .disable: "disable"
        case .pause: "pause"
        case .unpause: "unpause"
        case .clearFailed: "clear_failed"
        }
    }

    /// The role it needs, as its API operation does (rule 14).
    var role: Role {
        switch self {
        case .clear, .retry, .clearFailed: .update
        case .disable: .disable
        case .pause, .unpause: .pause
        }
    }

    var product: UUID? {
        switch self {
        case .clear(let id), .retry(let id), .disable(let id): id
        case .pause, .unpause, .clearFailed: nil
        }
    }

    /// The single-dataset mutation; nil for `clearFailed`, which selects its products in its transaction.
    var mutation: PlanMutation? {
        switch self {
        case .clear(let id): .clear([id])
        case .retry(let id): .retryNow([id])
        case .disable(let id): .disable([id])
        case .pause: .pause
        case .unpause: .unpause
        case .clearFailed: nil
        }
    }

    /// The bulk request of `clearFailed`: the dataset's failed products, however many.
    static func failedProducts(of datasetId: UUID, dryRun: Bool) -> BulkRequest {
        BulkRequest(
            action: .clear, selection: .filter(ProductQuery(states: [.failed], datasetId: datasetId)), dryRun: dryRun,
            maxProducts: BulkRequest.maxMaxProducts)
    }

    /// The button's label.
    var label: String {
        switch self {
        case .clear: "Clear…"
        case .retry: "Retry now…"
        case .disable: "Disable…"
        case .pause: "Pause…"
        case .unpause: "Unpause…"
        case .clearFailed: "Clear every failed product…"
        }
    }

    /// The question a confirmation asks, naming what it acts on.
    func question(_ productName: String?) -> String {
        let name = productName ?? "this data product"
        return switch self {
        case .clear: "Clear \(name) and everything downstream?"
        case .retry: "Retry \(name) now?"
        case .disable: "Disable \(name)?"
        case .pause: "Pause this plan?"
        case .unpause: "Unpause this plan?"
        case .clearFailed: "Clear every failed data product of this plan?"
        }
    }

    /// What it does beyond the state changes listed.
    var explanation: String {
        switch self {
        case .clear:
            "It goes back to waiting with every product downstream of it; those whose parents have all succeeded are queued at once as new tries. A try running now is cancelled at its platform."
        case .retry:
            "It is queued at once as a new try. A pending automatic retry is used now instead of after its wait; with none pending, its automatic retries start again."
        case .disable:
            "It leaves the plan's graph: its children no longer wait for it. A try running now is cancelled at its platform. Submitting it again brings it back."
        case .pause:
            "Nothing in this plan is queued while it is paused: no new tries, and no automatic retries. Tries already running go on."
        case .unpause:
            "Products whose parents have all succeeded are queued at once, and due retries fire."
        case .clearFailed:
            "Each product still failed when you confirm goes back to waiting with everything downstream of it; those whose parents have all succeeded are queued at once."
        }
    }

    /// The confirm button's label.
    func confirmLabel(changes: Int) -> String {
        switch self {
        case .clear: "Clear"
        case .retry: "Retry now"
        case .disable: "Disable"
        case .pause: "Pause the plan"
        case .unpause: "Unpause the plan"
        case .clearFailed: "Clear \(changes) failed product\(changes == 1 ? "" : "s")"
        }
    }

    /// The notice a page shows after it, from the redirect's query (`done`, `changed`).
    static func notice(done: String?, changed: Int?) -> String? {
        guard let done, names.contains(done) else { return nil }
        let verb =
            switch done {
            case "clear": "Cleared"
            case "retry": "Queued again"
            case "disable": "Disabled"
            case "pause": "Paused the plan"
            case "unpause": "Unpaused the plan"
            default: "Cleared the failed products"
            }
        guard let changed else { return verb + "." }
        return "\(verb): \(changed) data product\(changed == 1 ? "" : "s") changed state."
    }
}

/// A form that names no action, or a bad one (400).
struct WebActionError: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// The actions' buttons, confirmations and refusals.
enum ActionView {
    /// A button that asks to confirm `action` on a plan (no JavaScript: a plain form; with it, the
    /// confirmation opens in a dialog).
    static func button(_ action: WebAction, datasetId: UUID, viewer: Visitor.Viewer, back: String) -> HTML {
        let product: HTML = action.product.map { "<input type=\"hidden\" name=\"product\" value=\"\($0.lowercased)\">" } ?? ""
        return """
            <form class="action-form" method="post" action="/plan/\(datasetId.lowercased)/action">\
            <input type="hidden" name="csrf" value="\(viewer.formToken)">\
            <input type="hidden" name="action" value="\(action.name)">\(product)\
            <input type="hidden" name="back" value="\(back)">\
            <button type="submit" class="action \(action.name)">\(action.label)</button></form>
            """
    }

    /// The actions a viewer may take on a product, as a section; empty when there are none.
    static func productActions(plan: Plan, product: DataProduct, viewer: Visitor.Viewer?, back: String) -> HTML {
        guard let viewer else { return "" }
        var actions: [WebAction] = []
        if product.state != .disabled {
            actions.append(.clear(product.id))
            if product.state == .failed && !plan.dataset.paused { actions.append(.retry(product.id)) }
            actions.append(.disable(product.id))
        }
        return section(actions, datasetId: plan.dataset.id, viewer: viewer, back: back, id: "product-actions-title")
    }

    /// The actions a viewer may take on a plan, as a section; empty when there are none.
    static func planActions(plan: Plan, viewer: Visitor.Viewer?, back: String) -> HTML {
        guard let viewer else { return "" }
        var actions: [WebAction] = [plan.dataset.paused ? .unpause : .pause]
        if plan.dataProducts.contains(where: { $0.state == .failed }) { actions.append(.clearFailed) }
        return section(actions, datasetId: plan.dataset.id, viewer: viewer, back: back, id: "plan-actions-title")
    }

    private static func section(_ actions: [WebAction], datasetId: UUID, viewer: Visitor.Viewer, back: String, id: String) -> HTML {
        let allowed = actions.filter { viewer.holds($0.role) }
        guard !allowed.isEmpty else { return "" }
        return """
            <section class="actions" aria-labelledby="\(id)"><h2 id="\(id)" class="actions-title">Actions</h2>\
            <div class="action-list">\(allowed.map { button($0, datasetId: datasetId, viewer: viewer, back: back) })</div></section>
            """
    }

    /// Changes shown in a confirmation, at most; the rest are counted.
    static let shownChanges = 200

    /// The confirmation: what the action would change (a dry run), and a form that applies it.
    static func confirmation(
        _ action: WebAction, plan: Plan, changes: [ProductChange], viewer: Visitor.Viewer, back: String
    ) -> HTML {
        let datasetId = plan.dataset.id.lowercased
        let productName = action.product.flatMap { id in plan.dataProducts.first { $0.id == id } }.map { "\($0.name):\($0.version)" }
        let rows = changes.prefix(shownChanges).map { change -> HTML in
            """
            <tr><td><a href="/plan/\(datasetId)/product/\(change.id.lowercased)">\(change.name)</a></td>\
            <td>\(Layout.stateBadge(change.from))</td><td>\(Layout.stateBadge(change.to))</td></tr>
            """
        }
        let more: HTML = changes.count > shownChanges ? "<p>…and \(changes.count - shownChanges) more.</p>" : ""
        let summary: HTML =
            changes.isEmpty
            ? "<p class=\"no-change\">No data product would change state.</p>"
            : """
            <p>\(changes.count) data product\(changes.count == 1 ? "" : "s") would change state:</p>
            <div class="table-scroll"><table class="changes"><caption class="sr-only">State changes</caption>
            <thead><tr><th scope="col">Data product</th><th scope="col">Now</th><th scope="col">After</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>\(more)
            """
        let product: HTML = action.product.map { "<input type=\"hidden\" name=\"product\" value=\"\($0.lowercased)\">" } ?? ""
        return """
            <div class="confirm" role="group" aria-labelledby="confirm-title">
            <h1 id="confirm-title">\(action.question(productName))</h1>
            <p class="explanation">\(action.explanation)</p>
            \(summary)
            <form class="confirm-form" method="post" action="/plan/\(datasetId)/action">\
            <input type="hidden" name="csrf" value="\(viewer.formToken)">\
            <input type="hidden" name="action" value="\(action.name)">\(product)\
            <input type="hidden" name="back" value="\(back)">\
            <input type="hidden" name="confirm" value="yes">\
            <button type="submit" class="primary">\(action.confirmLabel(changes: changes.count))</button> \
            <a class="cancel" href="\(back)">Cancel</a></form>
            </div>
            """
    }

    /// A refused action: what went wrong, that nothing changed, and the way back.
    static func refusal(_ message: String, back: String) -> HTML {
        """
        <div class="refusal" role="alert">
        <h1 id="refusal-title">Not done</h1>
        <p class="error">\(message)</p>
        <p><a class="back" href="\(back)">Back</a></p>
        </div>
        """
    }
}
