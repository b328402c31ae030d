/// What the simulator counted since it started (`GET /stats`, and logged at shutdown): exact counts
/// to compare with Fletcher's history. A report counts by the answer Fletcher gave to its last attempt.
public struct SimulatorStats: Sendable, Equatable, Codable {
    /// Requests to `POST /jobs`: duplicates and bad bodies included.
    public var triggersReceived = 0
    /// Distinct idempotency keys, that is tries.
    public var jobsStarted = 0
    /// Jobs whose `success` report Fletcher accepted (2xx).
    public var jobsSucceeded = 0
    /// Jobs whose `failed` report Fletcher accepted (2xx).
    public var jobsFailed = 0
    /// Jobs that reported (or tried to report) `running` and then went silent, not cancelled before.
    public var jobsHung = 0
    /// Requests to `POST /cancel`: repeats and bad bodies included.
    public var cancelsReceived = 0
    /// Distinct jobs a cancel stopped (a repeated cancel counts once).
    public var jobsCancelled = 0
    /// Cancels answered 404: no job has that trigger id.
    public var cancelsUnknown = 0
    /// Cancels answered 409: the job had already started its final report.
    public var cancelsTooLate = 0
    /// Reports (`running`, `success`, `failed`) Fletcher accepted (2xx).
    public var reportsAccepted = 0
    /// Reports Fletcher refused with 409: the try they name is not the product's current one.
    public var reportsStale = 0
    /// Reports that ended with another answer, or none, after their retries.
    public var reportsFailed = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case triggersReceived = "triggers_received"
        case jobsStarted = "jobs_started"
        case jobsSucceeded = "jobs_succeeded"
        case jobsFailed = "jobs_failed"
        case jobsHung = "jobs_hung"
        case cancelsReceived = "cancels_received"
        case jobsCancelled = "jobs_cancelled"
        case cancelsUnknown = "cancels_unknown"
        case cancelsTooLate = "cancels_too_late"
        case reportsAccepted = "reports_accepted"
        case reportsStale = "reports_stale"
        case reportsFailed = "reports_failed"
    }
}
