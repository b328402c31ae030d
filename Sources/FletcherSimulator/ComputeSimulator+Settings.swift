extension ComputeSimulator {
    /// How the simulator listens, reports and chooses its jobs' outcomes.
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 4000
        public var service = "local"
        public var key = ""
        /// How long a job runs after reporting `running`, seconds.
        public var runSeconds = 2.0
        /// The share of jobs that fail (0 to 1).
        public var failRate = 0.0
        /// The share of jobs that report `running` and then nothing more (0 to 1; with `failRate` at most 1).
        public var hangRate = 0.0
        /// How long after its trigger a job reports `running`.
        public var runningAfter = Duration.milliseconds(100)
        /// Attempts per report: one that gets no answer, a 5xx, 408 or 429 is tried again after a pause.
        public var reportAttempts = 6
        /// The first pause between attempts of a report; it doubles per attempt, up to `maximumReportBackoff`.
        public var reportBackoff = Duration.milliseconds(200)
        public var maximumReportBackoff = Duration.seconds(5)

        public init() {}

        /// Checks the rates and the run time; the errors name the command-line options.
        public func validate() throws(SettingsError) {
            guard (0...1).contains(failRate) else { throw .rateOutOfRange(option: "--fail-rate", value: failRate) }
            guard (0...1).contains(hangRate) else { throw .rateOutOfRange(option: "--hang-rate", value: hangRate) }
            // A small tolerance so that 0.7 and 0.3 add up to 1 despite rounding.
            guard failRate + hangRate <= 1 + 1e-9 else { throw .ratesAboveOne(failRate: failRate, hangRate: hangRate) }
            guard runSeconds >= 0, runSeconds.isFinite else { throw .badRunSeconds(runSeconds) }
        }

        /// The outcome for a uniform draw from 0..<1: `failed` below `failRate`, `hang` below
        /// `failRate + hangRate`, `success` above.
        func outcome(draw: Double) -> SimulatedOutcome {
            if draw < failRate { return .failed }
            if draw < failRate + hangRate { return .hang }
            return .success
        }
    }

    /// Settings the simulator cannot run with.
    public enum SettingsError: Error, Equatable, CustomStringConvertible {
        case rateOutOfRange(option: String, value: Double)
        case ratesAboveOne(failRate: Double, hangRate: Double)
        case badRunSeconds(Double)

        public var description: String {
            switch self {
            case .rateOutOfRange(let option, let value):
                "\(option) must be from 0 to 1, not \(value)"
            case .ratesAboveOne(let failRate, let hangRate):
                "--fail-rate (\(failRate)) plus --hang-rate (\(hangRate)) must be at most 1: "
                    + "each job either fails, hangs or succeeds"
            case .badRunSeconds(let value):
                "--run-seconds must be a number of seconds, 0 or more, not \(value)"
            }
        }
    }
}
