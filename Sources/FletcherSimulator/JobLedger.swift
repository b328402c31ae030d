import Foundation

/// How a simulated job ends, drawn once when its trigger first arrives.
enum SimulatedOutcome: String, Sendable {
    case success, failed
    /// Reports `running`, then nothing more.
    case hang
}

/// One job the simulator started, under its trigger's idempotency key.
struct SimulatedJob: Sendable {
    /// Where a job stands; only `active` and `hanging` jobs can be cancelled.
    enum Phase: Sendable, Equatable {
        /// Started; it reports `running` and then its outcome.
        case active
        /// Reported `running` and went silent.
        case hanging
        /// Started its final report (`success` or `failed`): too late to cancel.
        case finishing
        /// Stopped by a cancel: it reports nothing more.
        case cancelled
    }

    var runId: UUID
    var link: String
    var outcome: SimulatedOutcome
    /// The trigger's `try`; nil from a Fletcher that does not send it.
    var attempt: Int?
    var phase = Phase.active
    /// The task that runs the job (cancelled by a cancel, so that a sleeping job ends at once).
    var task: Task<Void, Never>?
}

/// How `POST /cancel` answers.
enum CancelAnswer: Sendable, Equatable {
    /// 200: the job is stopped (`first` is false for a repeated cancel).
    case cancelled(first: Bool)
    /// 404: no job has that trigger id.
    case unknown
    /// 409: the job already started its final report.
    case tooLate
}

/// How Fletcher answered a report, after its retries.
enum ReportOutcome: Sendable {
    /// 2xx.
    case accepted
    /// 409: the report names a try that is no longer the product's current one.
    case stale
    /// Another answer, or none.
    case failed
}

/// The simulator's jobs and counters, changed together so that the counters stay exact
/// (the simulator keeps one in a `Mutex`).
struct JobLedger: Sendable {
    private(set) var stats = SimulatorStats()
    private var jobs: [String: SimulatedJob] = [:]

    /// Counts a `POST /jobs` request, whatever its body.
    mutating func receiveTrigger() { stats.triggersReceived += 1 }

    func job(_ key: String) -> SimulatedJob? { jobs[key] }

    /// Records a new job under `key`; the caller checked that `job(key)` is nil.
    mutating func start(_ key: String, _ job: SimulatedJob) {
        jobs[key] = job
        stats.jobsStarted += 1
    }

    /// Whether the job under `key` may still report `running` (it is not cancelled).
    func isActive(_ key: String) -> Bool { jobs[key]?.phase == .active }

    /// Marks the job silent after its `running` report, unless a cancel came first.
    mutating func hang(_ key: String) {
        guard jobs[key]?.phase == .active else { return }
        jobs[key]?.phase = .hanging
        stats.jobsHung += 1
    }

    /// Marks the job as making its final report; false when a cancel came first (then it reports nothing).
    mutating func finish(_ key: String) -> Bool {
        guard jobs[key]?.phase == .active else { return false }
        jobs[key]?.phase = .finishing
        return true
    }

    /// Counts a `POST /cancel` request whose body names no trigger.
    mutating func receiveBadCancel() { stats.cancelsReceived += 1 }

    /// Cancels the job under `key`: its task is returned on the first cancel, for the caller to cancel.
    mutating func cancel(_ key: String) -> (CancelAnswer, Task<Void, Never>?) {
        stats.cancelsReceived += 1
        guard let job = jobs[key] else {
            stats.cancelsUnknown += 1
            return (.unknown, nil)
        }
        switch job.phase {
        case .active, .hanging:
            jobs[key]?.phase = .cancelled
            stats.jobsCancelled += 1
            return (.cancelled(first: true), job.task)
        case .cancelled:
            return (.cancelled(first: false), nil)
        case .finishing:
            stats.cancelsTooLate += 1
            return (.tooLate, nil)
        }
    }

    /// Counts a report by Fletcher's final answer; an accepted final report counts its job.
    mutating func record(_ outcome: ReportOutcome, state: String) {
        switch outcome {
        case .accepted:
            stats.reportsAccepted += 1
            if state == "success" { stats.jobsSucceeded += 1 }
            if state == "failed" { stats.jobsFailed += 1 }
        case .stale: stats.reportsStale += 1
        case .failed: stats.reportsFailed += 1
        }
    }

    /// The tasks of every job started so far.
    var tasks: [Task<Void, Never>] { jobs.values.compactMap(\.task) }
}
