public import FletcherDomain

// Whether a product or a plan shows as late (`late` in answers, the badge on the web pages):
// docs/RULES.md rule 27 decides whether a deadline was missed; late lasts until it is made good.

extension DataProduct {
    /// It missed its deadline and is still not `success`.
    public var isLate: Bool { deadlineMissed == true && state != .success }
}

extension Plan {
    /// The dataset missed its deadline and an enabled product is still not `success`.
    public var isLate: Bool {
        dataset.deadlineMissed == true && dataProducts.contains { $0.state != .success && $0.state != .disabled }
    }
}
