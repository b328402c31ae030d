import FletcherDomain
import FletcherHTTP
import Foundation

/// Deadlines as the pages show them (docs/RULES.md rule 27): the time, and a "late" badge while it
/// was missed and is not made good (`DataProduct.isLate`, `Plan.isLate`). The live updates add and
/// remove the badge (`late` and `dataset_late` in each `plan` event).
enum DeadlineView {
    /// A product's deadline cell (the plan table's, the product page's): empty without a deadline.
    static func cell(_ product: DataProduct) -> HTML {
        guard let deadline = product.deadline else { return "" }
        return product.isLate ? "\(Layout.time(deadline)) \(badge)" : Layout.time(deadline)
    }

    /// The plan header's deadline of the dataset; nothing without one.
    static func header(_ plan: Plan) -> HTML {
        guard let deadline = plan.dataset.deadline else { return "" }
        let late: HTML = plan.isLate ? " \(badge)" : ""
        return "<span class=\"dataset-deadline deadline-cell\">deadline \(Layout.time(deadline))\(late)</span>"
    }

    static let badge: HTML = "<span class=\"badge late\" title=\"missed its deadline and not yet success\">late</span>"
}
