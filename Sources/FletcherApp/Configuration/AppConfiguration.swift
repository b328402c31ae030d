public import Configuration
public import FletcherDispatch
public import FletcherDomain
public import FletcherHTTP
public import FletcherPostgres
import FletcherStore
public import Foundation
public import Logging
import SystemPackage

/// Fletcher's settings, read and validated once at start-up.
public struct AppConfiguration: Sendable {
    public var database: DatabaseLocation
    public var listen: ListenAddress
    public var services: Services
    /// Size of the database connection pool.
    public var maxConnections: Int
    public var logLevel: Logger.Level
    /// Where triggers and cancels go, and how failed and stuck products are retried and timed out,
    /// by compute type (`COMPUTE_TARGETS`); a type absent here, or without a `url`, is not dispatched.
    public var computeTargets: [Compute: ComputeTarget]
    /// The address compute platforms call back (`PUBLIC_URL`).
    public var publicURL: String
    /// Crash-test hooks (`FLETCHER_FAILPOINTS`); none in normal use.
    public var failPoints = FailPoints()
    /// `LOG_FORMAT`: human-readable lines, or one JSON object per line.
    public var logFormat = LogFormat.text
    /// The largest request body accepted (`MAX_BODY_BYTES`); larger ones get 413.
    public var maxBodyBytes = 16 << 20
    /// Requests served at once before new ones get a fast 503 (`MAX_CONCURRENT_REQUESTS`).
    public var maxConcurrentRequests = 512
    /// A connection idle this long is closed (`IDLE_TIMEOUT_S`).
    public var idleTimeout: Double = 60
    /// A request's head must arrive within this long of the connection opening or the previous
    /// answer (`HEADER_TIMEOUT_S`), so slow clients cannot hold connections.
    public var headerTimeout: Double = 10
    /// A request waits this long at most for a database connection before it gets 503
    /// (`DATABASE_TIMEOUT_S`, PostgreSQL).
    public var databaseTimeout: Double = 5
    /// A request's database work (its statements, its transaction) that has not ended this long
    /// after it got its connection is given up, with a 503, and the connection closed
    /// (`DATABASE_QUERY_TIMEOUT_S`, PostgreSQL): a connection whose path went silent holds no
    /// request for good.
    public var databaseQueryTimeout: Double = 30
    /// What stands between Fletcher and PostgreSQL (`DATABASE_POOLER`): `transaction` for a pooler
    /// in transaction mode, such as PgBouncer's usual set-up.
    public var databasePooler = ConnectionPooler.none
    /// Where the change listener connects, straight to PostgreSQL, when `DATABASE_URL` goes
    /// through a pooler (`DATABASE_LISTEN_URL`).
    public var databaseListenURL: String?
    /// The most data products the plan cache holds across its plans (`PLAN_CACHE_PRODUCTS`).
    public var planCacheProducts = PlanCache.defaultCapacity
    /// Where events are pushed (`WEBHOOKS`); none by default.
    public var webhooks: [WebhookEndpoint] = []
    /// Where OpenLineage RunEvents go (`OPENLINEAGE_URL`, `OPENLINEAGE_NAMESPACE`,
    /// `OPENLINEAGE_API_KEY`); nil: none are sent.
    public var openLineage: OpenLineageSettings?
    /// OpenTelemetry traces (`OTEL_*`); nil: off.
    public var tracing: TracingSettings?

    public enum LogFormat: String, Sendable, CaseIterable {
        case text, json
    }

    /// Who may call the API.
    public enum Services: Sendable {
        /// `SECRET_KEY` and `REMOTE_APIS` as configured.
        case configured(secret: String, accounts: [ServiceAccount])
        /// Neither set: a random secret and one service `local` with every role and a random key.
        case development
    }

    public init(
        database: DatabaseLocation = .sqliteFile("fletcher.sqlite"),
        listen: ListenAddress = ListenAddress(host: "127.0.0.1", port: 3000), services: Services = .development,
        maxConnections: Int = 10, logLevel: Logger.Level = .info, computeTargets: [Compute: ComputeTarget] = [:],
        publicURL: String? = nil
    ) {
        self.database = database
        self.listen = listen
        self.services = services
        self.maxConnections = maxConnections
        self.logLevel = logLevel
        self.computeTargets = computeTargets
        self.publicURL = publicURL ?? "http://\(listen.host):\(listen.port)"
    }

    /// Reads the process environment, then the `.env` file in the working directory for what the
    /// environment does not set. Throws a `ConfigurationError` naming the variable at fault.
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment, dotEnvPath: String? = ".env"
    ) throws -> AppConfiguration {
        var dotEnv: [String: String] = [:]
        if let dotEnvPath, FileManager.default.fileExists(atPath: dotEnvPath) {
            guard let text = try? String(contentsOfFile: dotEnvPath, encoding: .utf8) else {
                throw ConfigurationError(".env", "cannot read \(dotEnvPath) as UTF-8 text")
            }
            dotEnv = try DotEnv.parse(text)
        }
        let secrets = SecretsSpecifier<String, String>.specific([
            "SECRET_KEY", "REMOTE_APIS", "DATABASE_URL", "DATABASE_LISTEN_URL", "COMPUTE_TARGETS", "WEBHOOKS", "OPENLINEAGE_API_KEY",
            "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ])
        let reader = ConfigReader(providers: [
            EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: secrets),
            EnvironmentVariablesProvider(environmentVariables: dotEnv, secretsSpecifier: secrets),
        ])
        return try AppConfiguration(reading: reader)
    }

    /// HS256 keys shorter than the hash output weaken the signature (RFC 7518 §3.2).
    public static let minimumSecretBytes = 32

    /// Reads every setting from `reader` by its variable name (`MAX_CONNECTIONS` is the key
    /// `max.connections`); a variable set empty counts as unset.
    public init(reading reader: ConfigReader) throws {
        let variables = ConfigVariables(reader)
        database = try DatabaseLocation(url: variables.text("DATABASE_URL") ?? "sqlite:fletcher.sqlite")
        listen = try ListenAddress(baseURL: variables.text("BASE_URL") ?? "127.0.0.1:3000")
        maxConnections =
            try variables.read("MAX_CONNECTIONS", expected: "expected a whole number from 1 to 1000", where: (1...1000).contains) {
                reader.int(forKey: $0)
            } ?? 10
        logLevel =
            try variables.read(
                "LOG_LEVEL", expected: "expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))"
            ) { reader.string(forKey: $0, as: AnyCase<Logger.Level>.self)?.value } ?? .info
        computeTargets = try variables.text("COMPUTE_TARGETS").map(Self.parseComputeTargets) ?? [:]
        publicURL =
            try variables.read("PUBLIC_URL", expected: "expected an http(s) URL such as http://fletcher.example:3000") {
                reader.string(forKey: $0).flatMap { Self.isHTTPURL($0) ? $0 : nil }
            } ?? "http://\(listen.host):\(listen.port)"
        logFormat = try variables.read("LOG_FORMAT", expected: "expected text or json") {
            reader.string(forKey: $0, as: AnyCase<LogFormat>.self)?.value
        } ?? .text

        /// A number from `range`, read as a `Double` (`MAX_BODY_BYTES=1e6` is a number too).
        func number(_ variable: String, _ range: ClosedRange<Double>) throws -> Double? {
            try variables.read(variable, expected: "expected a number from \(range.lowerBound) to \(range.upperBound)", where: range.contains) {
                reader.double(forKey: $0)
            }
        }
        if let bytes = try number("MAX_BODY_BYTES", 1024...Double(1 << 34)) { maxBodyBytes = Int(bytes) }
        if let count = try number("MAX_CONCURRENT_REQUESTS", 1...1_000_000) { maxConcurrentRequests = Int(count) }
        if let seconds = try number("IDLE_TIMEOUT_S", 1...86_400) { idleTimeout = seconds }
        if let seconds = try number("HEADER_TIMEOUT_S", 0.5...3_600) { headerTimeout = seconds }
        if let seconds = try number("DATABASE_TIMEOUT_S", 0.1...3_600) { databaseTimeout = seconds }
        if let seconds = try number("DATABASE_QUERY_TIMEOUT_S", 1...86_400) { databaseQueryTimeout = seconds }
        if let count = try number("PLAN_CACHE_PRODUCTS", 0...100_000_000) { planCacheProducts = Int(count) }
        databasePooler =
            try variables.read(
                "DATABASE_POOLER", expected: "expected \(ConnectionPooler.allCases.map(\.rawValue).joined(separator: " or "))"
            ) { reader.string(forKey: $0, as: AnyCase<ConnectionPooler>.self)?.value } ?? .none
        if let url = variables.text("DATABASE_LISTEN_URL") {
            guard case .postgres = database else {
                throw ConfigurationError("DATABASE_LISTEN_URL", "is for PostgreSQL only; DATABASE_URL names \(database.description)")
            }
            guard case .postgres = try? DatabaseLocation(url: url) else {
                throw ConfigurationError(
                    "DATABASE_LISTEN_URL", "expected a postgres:// URL straight to the server, got '\(DatabaseLocation.redacted(url))'")
            }
            databaseListenURL = url
        }

        if let text = variables.text("WEBHOOKS") {
            do {
                webhooks = try WebhookEndpoint.parseList(text)
            } catch {
                throw ConfigurationError("WEBHOOKS", error.message)
            }
        }
        do {
            openLineage = try OpenLineageSettings.parse(
                url: variables.text("OPENLINEAGE_URL"), namespace: variables.text("OPENLINEAGE_NAMESPACE"),
                apiKey: variables.text("OPENLINEAGE_API_KEY"))
        } catch {
            throw ConfigurationError(error.variable, error.problem)
        }

        tracing = try TracingSettings.read(variables)

        failPoints =
            try variables.read(
                "FLETCHER_FAILPOINTS",
                expected: "expected point=kill[,point=kill…] with points \(FailPoints.Point.allCases.map(\.rawValue).joined(separator: ", "))"
            ) { reader.string(forKey: $0).flatMap(FailPoints.init(parsing:)) } ?? FailPoints()

        switch (variables.text("SECRET_KEY"), variables.text("REMOTE_APIS")) {
        case (nil, nil):
            services = .development
        case (.some, nil):
            throw ConfigurationError("REMOTE_APIS", "SECRET_KEY is set but REMOTE_APIS is not; set both, or neither for development mode")
        case (nil, .some):
            throw ConfigurationError("SECRET_KEY", "REMOTE_APIS is set but SECRET_KEY is not; set both, or neither for development mode")
        case (.some(let secret), .some(let remoteAPIs)):
            guard secret.utf8.count >= Self.minimumSecretBytes else {
                throw ConfigurationError(
                    "SECRET_KEY", "must be at least \(Self.minimumSecretBytes) bytes long (HS256 needs a 256-bit key); it has \(secret.utf8.count)")
            }
            services = .configured(secret: secret, accounts: try Self.parseRemoteAPIs(remoteAPIs))
        }
    }

    /// Whether `text` is an absolute http(s) URL with a host.
    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text) else { return false }
        return ["http", "https"].contains(url.scheme ?? "") && url.host != nil
    }

    /// Parses `COMPUTE_TARGETS`: a JSON object keyed by compute type, each `{url?, cancel_url?,
    /// headers?, max_in_flight?, timeout_s?, max_attempts?, max_age_s?, retries?, max_queued_s?,
    /// max_running_s?}` with `retries` `{max, delay_s?, max_delay_s?}`. An entry without `url` sends
    /// nothing; its policies still apply (docs/RULES.md rules 23–25).
    static func parseComputeTargets(_ text: String) throws -> [Compute: ComputeTarget] {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError("COMPUTE_TARGETS", problem) }
        struct Entry: Decodable {
            var url: String?
            var cancel_url: String?
            var headers: [String: String]?
            var max_in_flight: Double?
            var timeout_s: Double?
            var max_attempts: Double?
            var max_age_s: Double?
            // Read as any JSON, so that a wrong value gets a message of its own.
            var retries: LooseJSON?
            var max_queued_s: LooseJSON?
            var max_running_s: LooseJSON?
        }
        let entries: [String: Entry]
        do {
            entries = try JSONDecoder().decode([String: Entry].self, from: Data(text.utf8))
        } catch let error as DecodingError {
            let field = Self.path(of: error)
            throw fail(
                "expected a JSON object keyed by compute type, each {\"url\"?, \"cancel_url\"?, \"headers\"?, \"max_in_flight\"?, "
                    + "\"timeout_s\"?, \"max_attempts\"?, \"max_age_s\"?, \"retries\"?, \"max_queued_s\"?, \"max_running_s\"?}"
                    + (field.isEmpty ? "" : "; wrong or missing: \(field)"))
        }
        var targets: [Compute: ComputeTarget] = [:]
        for (key, entry) in entries {
            guard let compute = Compute(rawValue: key) else {
                throw fail("unknown compute type '\(key)' (types are \(Compute.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            func url(_ text: String?, _ name: String) throws -> URL? {
                guard let text else { return nil }
                guard Self.isHTTPURL(text), let url = URL(string: text) else { throw fail("\(key): \"\(name)\" must be an http(s) URL") }
                return url
            }
            func checked(_ value: Double?, _ name: String, minimum: Double) throws -> Double? {
                guard let value else { return nil }
                guard value.isFinite, value >= minimum else { throw fail("\(key): \"\(name)\" must be at least \(minimum)") }
                return value
            }
            /// Seconds from `range`; `what` says the range in words.
            func seconds(_ value: LooseJSON?, _ name: String, _ range: ClosedRange<Double>, _ what: String) throws -> Double? {
                guard let value else { return nil }
                guard case .number(let seconds) = value, seconds.isFinite, range.contains(seconds) else {
                    throw fail("\(key): \"\(name)\" must be a number of seconds \(what)")
                }
                return seconds
            }
            let year = "above 0 and at most \(Int(ProductLimits.secondsRange.upperBound)) (a year)"
            var target = ComputeTarget(
                url: try url(entry.url, "url"), headers: entry.headers ?? [:], cancelURL: try url(entry.cancel_url, "cancel_url"),
                maxQueued: try seconds(entry.max_queued_s, "max_queued_s", ProductLimits.secondsRange, year),
                maxRunning: try seconds(entry.max_running_s, "max_running_s", ProductLimits.secondsRange, year))
            if let retries = entry.retries {
                target.retries = try Self.retryPolicy(retries, fail: { fail("\(key): \($0)") })
            }
            if target.cancelURL != nil, target.url == nil {
                throw fail("\(key): \"cancel_url\" needs \"url\" (a cancel stops a job a trigger started)")
            }
            if target.url == nil, target.retries == nil, target.maxQueued == nil, target.maxRunning == nil {
                throw fail("\(key): set \"url\", or a policy (\"retries\", \"max_queued_s\", \"max_running_s\")")
            }
            if let value = try checked(entry.max_in_flight, "max_in_flight", minimum: 1) { target.maxInFlight = Int(value) }
            if let value = try checked(entry.timeout_s, "timeout_s", minimum: 0.1) { target.timeout = value }
            if let value = try checked(entry.max_attempts, "max_attempts", minimum: 1) { target.maxAttempts = Int(value) }
            if let value = try checked(entry.max_age_s, "max_age_s", minimum: 1) { target.maxAge = value }
            targets[compute] = target
        }
        return targets
    }

    /// The longest first wait before a retry (a day) and the longest wait before any (a week), in seconds.
    static let maxRetryDelay: Double = 86_400
    static let maxRetryMaxDelay: Double = 604_800

    /// A `COMPUTE_TARGETS` entry's `retries`: `{"max": 0–100, "delay_s"?: (0, a day], "max_delay_s"?:
    /// [delay_s, a week]}`. `max` must be a whole number: 2.5 or "3" is refused, not rounded.
    private static func retryPolicy(_ value: LooseJSON, fail: (String) -> ConfigurationError) throws -> RetryPolicy {
        let keys = ["max", "delay_s", "max_delay_s"]
        guard case .object(let members) = value else {
            throw fail(#""retries" must be an object {"max", "delay_s"?, "max_delay_s"?}"#)
        }
        if let unknown = members.keys.sorted().first(where: { !keys.contains($0) }) {
            throw fail("\"retries\" has an unknown key \"\(unknown)\" (keys are \(keys.joined(separator: ", ")))")
        }
        let range = ProductLimits.retriesRange
        guard case .number(let max) = members["max"], max == max.rounded(), range.contains(Int(exactly: max) ?? -1) else {
            throw fail("\"retries.max\" must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        var policy = RetryPolicy(max: Int(max))
        if let delay = members["delay_s"] {
            guard case .number(let seconds) = delay, seconds.isFinite, seconds > 0, seconds <= maxRetryDelay else {
                throw fail("\"retries.delay_s\" must be a number of seconds above 0 and at most \(Int(maxRetryDelay)) (a day)")
            }
            policy.delay = seconds
            // A first wait beyond the default cap raises the cap.
            policy.maxDelay = Swift.max(policy.maxDelay, seconds)
        }
        if let maxDelay = members["max_delay_s"] {
            guard case .number(let seconds) = maxDelay, seconds.isFinite, seconds >= policy.delay, seconds <= maxRetryMaxDelay else {
                throw fail(
                    "\"retries.max_delay_s\" must be a number of seconds from \"retries.delay_s\" (\(JSONValue.numberText(policy.delay))) "
                        + "to \(Int(maxRetryMaxDelay)) (a week)")
            }
            policy.maxDelay = seconds
        }
        return policy
    }

    private static func path(of error: DecodingError) -> String {
        let context: DecodingError.Context
        switch error {
        case .keyNotFound(let key, let found): return (found.codingPath + [key]).map(\.stringValue).joined(separator: ".")
        case .typeMismatch(_, let found), .valueNotFound(_, let found), .dataCorrupted(let found): context = found
        @unknown default: return ""
        }
        return context.codingPath.map(\.stringValue).joined(separator: ".")
    }

    /// Parses `REMOTE_APIS`: a JSON list of `{service, hash, roles}`.
    static func parseRemoteAPIs(_ text: String) throws -> [ServiceAccount] {
        func fail(_ problem: String) -> ConfigurationError { ConfigurationError("REMOTE_APIS", problem) }
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let entries = json as? [Any] else {
            throw fail("expected a JSON list of {\"service\", \"hash\", \"roles\"} objects")
        }
        var accounts: [ServiceAccount] = []
        var names = Set<String>()
        for (offset, entry) in entries.enumerated() {
            guard let object = entry as? [String: Any] else { throw fail("entry \(offset) is not an object") }
            guard let service = object["service"] as? String, !service.isEmpty else {
                throw fail("entry \(offset) has no \"service\" name")
            }
            guard names.insert(service).inserted else { throw fail("service '\(service)' is listed twice") }
            guard let hash = object["hash"] as? String, ServiceAccount.isBcryptHash(hash) else {
                throw fail("service '\(service)': \"hash\" must be a bcrypt hash ($2a$, $2b$ or $2y$); make one with `fletcher hash-key`")
            }
            guard let roleNames = (object["roles"] ?? []) as? [String] else {
                throw fail("service '\(service)': \"roles\" must be a list of role names")
            }
            var roles = Set<Role>()
            for name in roleNames {
                guard let role = Role(rawValue: name) else {
                    throw fail(
                        "service '\(service)': unknown role '\(name)' (roles are \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                roles.insert(role)
            }
            accounts.append(ServiceAccount(service: service, hash: hash, roles: roles))
        }
        return accounts
    }
}

/// Any JSON value, as far as `COMPUTE_TARGETS`' policies need to tell: a number, an object, or
/// something else (null reads as an absent key).
enum LooseJSON: Decodable, Sendable {
    case number(Double)
    case object([String: LooseJSON])
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let members = try? container.decode([String: LooseJSON].self) {
            self = .object(members)
        } else {
            self = .other
        }
    }
}
