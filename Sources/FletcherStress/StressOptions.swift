public import Foundation

/// What `fletcher stress` replays.
public enum Scenario: String, CaseIterable, Sendable {
    /// The original load test's mix: four state updates to one visit of the index page, the search
    /// fragment and a plan page.
    case mixed
    /// State updates (and the clears that restart each plan) only.
    case updates
    /// Plan reads (`GET /api/plan/{id}`) only.
    case reads
    /// Data products across datasets (`GET /api/data_products`), each filter in turn (one kind
    /// per filter in the report), each query followed by its second page.
    case products
    /// Plans driven by Fletcher's own dispatcher: this tool is the compute platform, receives the
    /// triggers and reports back; measures the trigger latency.
    case dispatch
}

public struct StressOptions: Sendable {
    /// The server, e.g. `http://127.0.0.1:3000`.
    public var url: URL
    public var service: String
    public var key: String
    /// Requests in flight at once (one per worker).
    public var concurrency: Int
    /// Stop after this long…
    public var duration: Duration?
    /// …or after this many requests (after the set-up).
    public var requests: Int?
    /// Plans to submit and drive.
    public var plans: Int
    public var scenario: Scenario
    /// Where the stand-in compute platform listens in the `dispatch` scenario.
    public var platformPort: Int
    /// Where the webhook receiver listens, when one is wanted: the server's `WEBHOOKS` posts to
    /// `http://127.0.0.1:{port}/hooks` (standard format) and the report has the webhook latency.
    public var webhookPort: Int?
    /// Requests per second, all workers together (at most; nil: as fast as answers come).
    public var rate: Double?
    /// How often progress is printed (to standard error).
    public var progressInterval: Duration
    /// Where every write request's outcome goes, one JSON line each (`WriteLog`), if anywhere.
    public var writeLog: String?

    public init(
        url: URL, service: String, key: String, concurrency: Int = 16, duration: Duration? = .seconds(30), requests: Int? = nil,
        plans: Int = 100, scenario: Scenario = .mixed, platformPort: Int = 9100, webhookPort: Int? = nil, rate: Double? = nil,
        progressInterval: Duration = .seconds(2), writeLog: String? = nil
    ) {
        self.url = url
        self.service = service
        self.key = key
        self.concurrency = concurrency
        self.duration = duration
        self.requests = requests
        self.plans = plans
        self.scenario = scenario
        self.platformPort = platformPort
        self.webhookPort = webhookPort
        self.rate = rate
        self.progressInterval = progressInterval
        self.writeLog = writeLog
    }
}
