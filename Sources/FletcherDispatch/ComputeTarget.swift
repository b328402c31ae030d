public import FletcherDomain
import FletcherJSON
public import Foundation

/// Where and how to send the triggers of one compute type (one entry of `COMPUTE_TARGETS`).
public struct ComputeTarget: Sendable, Hashable {
    public var url: URL
    /// Extra request headers (`Authorization`, …).
    public var headers: [String: String]
    /// Requests open at once at the platform, across all Fletcher processes.
    public var maxInFlight: Int
    /// Seconds to wait for an answer.
    public var timeout: Double
    /// Attempts before a trigger is given up.
    public var maxAttempts: Int
    /// Seconds after queueing before a trigger is given up.
    public var maxAge: Double

    public init(
        url: URL, headers: [String: String] = [:], maxInFlight: Int = 8, timeout: Double = 15, maxAttempts: Int = 25,
        maxAge: Double = 86_400
    ) {
        self.url = url
        self.headers = headers
        self.maxInFlight = maxInFlight
        self.timeout = timeout
        self.maxAttempts = maxAttempts
        self.maxAge = maxAge
    }

    /// The limits the dispatch policy gives a trigger up by (docs/RULES.md rule 19).
    public var limits: DispatchPolicy.Limits { DispatchPolicy.Limits(maxAttempts: maxAttempts, maxAge: maxAge) }
}

/// The dispatcher's settings.
public struct DispatchConfiguration: Sendable {
    public var targets: [Compute: ComputeTarget]
    /// The address platforms call back, e.g. `http://fletcher.example:3000`.
    public var publicURL: String

    public init(targets: [Compute: ComputeTarget], publicURL: String) {
        self.targets = targets
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
    }

    /// Where a platform reports the states of a dataset's products.
    public func callbackURL(datasetId: UUID) -> String {
        "\(publicURL)/api/data_product/\(datasetId.lowercased)/update"
    }
}
