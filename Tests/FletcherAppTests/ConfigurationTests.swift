import FletcherApp
import FletcherDispatch
import FletcherDomain
import FletcherHTTP
import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import HummingbirdBcrypt
import Logging
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    let hash = Bcrypt.hash("k", cost: 4)
    let secret = String(repeating: "s", count: 40)

    func load(_ environment: [String: String], dotEnv: String? = nil) throws -> AppConfiguration {
        var path: String?
        if let dotEnv {
            path = ScratchFiles.path("env", suffix: "env")
            try dotEnv.write(toFile: path!, atomically: true, encoding: .utf8)
        }
        return try AppConfiguration.load(environment: environment, dotEnvPath: path ?? "/nonexistent/.env")
    }

    /// Loading `environment` fails with exactly `expected` (the variable and the problem, as the
    /// server prints them before it exits with status 78).
    func expectError(
        _ expected: ConfigurationError, _ environment: [String: String], dotEnv: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try load(environment, dotEnv: dotEnv)
            Issue.record("expected \(expected)", sourceLocation: sourceLocation)
        } catch let error as ConfigurationError {
            #expect(error == expected, sourceLocation: sourceLocation)
            #expect(error.description == "configuration error: \(expected.variable): \(expected.problem)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Every variable `AppConfiguration` reads, unset (or set empty, which counts as unset).
    static let everyVariable = [
        "DATABASE_URL", "BASE_URL", "PUBLIC_URL", "MAX_CONNECTIONS", "LOG_LEVEL", "LOG_FORMAT", "COMPUTE_TARGETS", "MAX_BODY_BYTES",
        "MAX_CONCURRENT_REQUESTS", "IDLE_TIMEOUT_S", "HEADER_TIMEOUT_S", "DATABASE_TIMEOUT_S", "DATABASE_QUERY_TIMEOUT_S",
        "DATABASE_POOLER", "DATABASE_LISTEN_URL", "PLAN_CACHE_PRODUCTS", "FLETCHER_FAILPOINTS", "SECRET_KEY", "REMOTE_APIS", "WEBHOOKS", "OPENLINEAGE_URL", "OPENLINEAGE_NAMESPACE", "OPENLINEAGE_API_KEY",
    ]

    @Test(arguments: [false, true])
    func defaultsAreTheEmbeddedDatabaseOnLocalhostInDevelopmentMode(setEmpty: Bool) throws {
        let configuration = try load(setEmpty ? Dictionary(uniqueKeysWithValues: Self.everyVariable.map { ($0, "") }) : [:])
        #expect(configuration.database == .sqliteFile("fletcher.sqlite"))
        #expect(configuration.listen == ListenAddress(host: "127.0.0.1", port: 3000))
        #expect(configuration.publicURL == "http://127.0.0.1:3000")
        #expect(configuration.maxConnections == 10)
        #expect(configuration.logLevel == .info)
        #expect(configuration.logFormat == .text)
        #expect(configuration.computeTargets.isEmpty)
        #expect(configuration.maxBodyBytes == 16 << 20)
        #expect(configuration.maxConcurrentRequests == 512)
        #expect(configuration.idleTimeout == 60)
        #expect(configuration.headerTimeout == 10)
        #expect(configuration.databaseTimeout == 5)
        #expect(configuration.databaseQueryTimeout == 30)
        #expect(configuration.databasePooler == .none)
        #expect(configuration.databaseListenURL == nil)
        #expect(configuration.planCacheProducts == 50_000)
        #expect(configuration.failPoints == FailPoints())
        #expect(configuration.webhooks.isEmpty)
        #expect(configuration.openLineage == nil)
        guard case .development = configuration.services else { Issue.record("expected development mode"); return }
    }

    @Test func everyVariableIsRead() throws {
        let environment = [
            "DATABASE_URL": "postgres://u:p@db:5433/fletcher", "BASE_URL": "http://0.0.0.0:8080/", "PUBLIC_URL": "https://fletcher.example",
            "MAX_CONNECTIONS": "25", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "JSON",
            "COMPUTE_TARGETS": #"{"cams": {"url": "http://cams.example/jobs"}}"#, "MAX_BODY_BYTES": "1048576",
            "MAX_CONCURRENT_REQUESTS": "64", "IDLE_TIMEOUT_S": "30", "HEADER_TIMEOUT_S": "2.5", "DATABASE_TIMEOUT_S": "0.25",
            "DATABASE_QUERY_TIMEOUT_S": "90", "DATABASE_POOLER": "Transaction", "DATABASE_LISTEN_URL": "postgres://u:p@db-direct:5432/fletcher", "PLAN_CACHE_PRODUCTS": "1000", "FLETCHER_FAILPOINTS": "dispatch.after_claim=kill, dispatch.after_send=kill",
            "SECRET_KEY": secret, "REMOTE_APIS": #"[{"service": "svc", "hash": "\#(hash)", "roles": ["publish", "update"]}]"#,
            "WEBHOOKS": #"[{"url": "https://chat.example/hook", "events": ["data_product.failed"], "format": "slack"}]"#,
            "OPENLINEAGE_URL": "http://marquez.example:5000", "OPENLINEAGE_NAMESPACE": "team-a", "OPENLINEAGE_API_KEY": "k3y",
        ]
        #expect(Set(environment.keys) == Set(Self.everyVariable))
        let configuration = try load(environment)
        #expect(configuration.database == .postgres("postgres://u:p@db:5433/fletcher"))
        #expect(configuration.listen == ListenAddress(host: "0.0.0.0", port: 8080))
        #expect(configuration.publicURL == "https://fletcher.example")
        #expect(configuration.maxConnections == 25)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logFormat == .json)
        #expect(configuration.computeTargets.keys.map(\.rawValue) == ["cams"])
        #expect(configuration.maxBodyBytes == 1_048_576)
        #expect(configuration.maxConcurrentRequests == 64)
        #expect(configuration.idleTimeout == 30)
        #expect(configuration.headerTimeout == 2.5)
        #expect(configuration.databaseTimeout == 0.25)
        #expect(configuration.databaseQueryTimeout == 90)
        #expect(configuration.databasePooler == .transaction)
        #expect(configuration.databaseListenURL == "postgres://u:p@db-direct:5432/fletcher")
        #expect(configuration.planCacheProducts == 1000)
        #expect(configuration.failPoints == FailPoints(killAt: [.afterClaim, .afterSend]))
        #expect(
            configuration.webhooks
                == [WebhookEndpoint(url: URL(string: "https://chat.example/hook")!, events: [.dataProductFailed], format: .slack)])
        #expect(
            configuration.openLineage
                == OpenLineageSettings(url: URL(string: "http://marquez.example:5000")!, namespace: "team-a", apiKey: "k3y"))
        guard case .configured(let configuredSecret, let accounts) = configuration.services else {
            Issue.record("expected configured services")
            return
        }
        #expect(configuredSecret == secret)
        #expect(accounts == [ServiceAccount(service: "svc", hash: hash, roles: [.publish, .update])])
    }

    /// The numeric settings take every value of their range, ends included.
    @Test func numbersAreReadUpToTheEndsOfTheirRanges() throws {
        let lowest = try load([
            "MAX_CONNECTIONS": "1", "MAX_BODY_BYTES": "1024", "MAX_CONCURRENT_REQUESTS": "1", "IDLE_TIMEOUT_S": "1",
            "HEADER_TIMEOUT_S": "0.5", "DATABASE_TIMEOUT_S": "0.1", "DATABASE_QUERY_TIMEOUT_S": "1", "PLAN_CACHE_PRODUCTS": "0",
        ])
        #expect(lowest.maxConnections == 1 && lowest.maxBodyBytes == 1024 && lowest.maxConcurrentRequests == 1)
        #expect(lowest.idleTimeout == 1 && lowest.headerTimeout == 0.5 && lowest.databaseTimeout == 0.1 && lowest.planCacheProducts == 0)
        #expect(lowest.databaseQueryTimeout == 1)
        let highest = try load([
            "MAX_CONNECTIONS": "1000", "MAX_BODY_BYTES": "17179869184", "MAX_CONCURRENT_REQUESTS": "1000000", "IDLE_TIMEOUT_S": "86400",
            "HEADER_TIMEOUT_S": "3600", "DATABASE_TIMEOUT_S": "3600", "DATABASE_QUERY_TIMEOUT_S": "86400",
            "PLAN_CACHE_PRODUCTS": "100000000",
        ])
        #expect(highest.maxConnections == 1000 && highest.maxBodyBytes == 1 << 34 && highest.maxConcurrentRequests == 1_000_000)
        #expect(highest.idleTimeout == 86_400 && highest.headerTimeout == 3600 && highest.databaseTimeout == 3600)
        #expect(highest.planCacheProducts == 100_000_000 && highest.databaseQueryTimeout == 86_400)
        for level in Logger.Level.allCases {
            #expect(try load(["LOG_LEVEL": level.rawValue.uppercased()]).logLevel == level)
        }
        #expect(try load(["LOG_FORMAT": "text"]).logFormat == .text)
        #expect(try load(["DATABASE_URL": "sqlite::memory:"]).database == .sqliteMemory)
        #expect(try load(["BASE_URL": "[::1]:3001"]).listen == ListenAddress(host: "::1", port: 3001))
        #expect(try load(["FLETCHER_FAILPOINTS": "dispatch.after_send=kill"]).failPoints == FailPoints(killAt: [.afterSend]))
    }

    @Test func theDotEnvFileFillsInWhatTheEnvironmentLeavesOut() throws {
        let dotEnv = """
            # comment
            export BASE_URL=127.0.0.1:4000
            MAX_CONNECTIONS=3 # trailing comment
            SECRET_KEY="\(secret)"
            REMOTE_APIS='[
              {"service": "local", "hash": "\(hash)", "roles": ["publish"]},
              {"service": "readonly", "hash": "\(hash)", "roles": []}
            ]'
            """
        let configuration = try load(["MAX_CONNECTIONS": "7"], dotEnv: dotEnv)
        #expect(configuration.listen.port == 4000)
        #expect(configuration.maxConnections == 7)  // the real environment wins
        guard case .configured(_, let accounts) = configuration.services else { Issue.record("not configured"); return }
        #expect(accounts.map(\.service) == ["local", "readonly"])
    }

    /// A value in the environment that does not convert stops start-up; it is neither taken as unset
    /// nor replaced by the `.env` file's value.
    @Test func aBadValueInTheEnvironmentIsNotReplacedByTheDotEnvFile() {
        expectError(
            ConfigurationError("MAX_CONNECTIONS", "expected a whole number from 1 to 1000, got 'ten'"), ["MAX_CONNECTIONS": "ten"],
            dotEnv: "MAX_CONNECTIONS=3")
        expectError(
            ConfigurationError("IDLE_TIMEOUT_S", "expected a number from 1.0 to 86400.0, got 'long'"), ["IDLE_TIMEOUT_S": "long"],
            dotEnv: "IDLE_TIMEOUT_S=30")
        expectError(
            ConfigurationError("LOG_FORMAT", "expected text or json, got 'xml'"), ["LOG_FORMAT": "xml"], dotEnv: "LOG_FORMAT=json")
    }

    @Test func sqliteLocations() throws {
        #expect(try DatabaseLocation(url: "sqlite::memory:") == .sqliteMemory)
        #expect(try DatabaseLocation(url: "sqlite:data/f.db") == .sqliteFile("data/f.db"))
        #expect(try DatabaseLocation(url: "sqlite:///var/f.db?mode=rwc") == .sqliteFile("/var/f.db"))
        #expect(try DatabaseLocation(url: "postgresql://h/db") == .postgres("postgresql://h/db"))
        #expect(DatabaseLocation.redacted("postgres://u:secret@h/db") == "postgres://u:***@h/db")
    }

    /// The store the server builds from its configuration holds plans up to the configured bound.
    @Test func thePlanCacheBoundReachesTheStore() throws {
        for (text, capacity) in [("7", 7), (nil, 50_000)] {
            var environment = ["DATABASE_URL": "sqlite::memory:"]
            environment["PLAN_CACHE_PRODUCTS"] = text
            let setup = try StoreSetup(try load(environment), logger: Logger(label: "fletcher-test"))
            #expect(setup.store.planCache.capacity == capacity)
        }
    }

    @Test func everyBadValueNamesItsVariableAndTheProblem() {
        func number(_ variable: String, _ range: String, _ value: String) {
            expectError(ConfigurationError(variable, "expected a number from \(range), got '\(value)'"), [variable: value])
        }
        expectError(
            ConfigurationError(
                "DATABASE_URL", "expected postgres://…, postgresql://…, sqlite:PATH or sqlite::memory:, got 'mysql://u:***@x'"),
            ["DATABASE_URL": "mysql://u:secret@x"])
        expectError(ConfigurationError("DATABASE_URL", "'sqlite:' needs a file path, as in sqlite:fletcher.sqlite"), ["DATABASE_URL": "sqlite:"])
        expectError(ConfigurationError("BASE_URL", "expected host:port, such as 127.0.0.1:3000, got 'localhost'"), ["BASE_URL": "localhost"])
        expectError(ConfigurationError("BASE_URL", "expected host:port, such as 127.0.0.1:3000, got ':3000'"), ["BASE_URL": ":3000"])
        expectError(ConfigurationError("BASE_URL", "'99999' is not a port number (0–65535)"), ["BASE_URL": "localhost:99999"])
        expectError(ConfigurationError("BASE_URL", "'http' is not a port number (0–65535)"), ["BASE_URL": "localhost:http"])
        expectError(
            ConfigurationError("BASE_URL", "Fletcher serves plain HTTP; put TLS in front of it and use host:port"), ["BASE_URL": "https://x:1"])
        let publicURL = "expected an http(s) URL such as http://fletcher.example:3000"
        expectError(ConfigurationError("PUBLIC_URL", "\(publicURL), got 'fletcher.example'"), ["PUBLIC_URL": "fletcher.example"])
        expectError(ConfigurationError("PUBLIC_URL", "\(publicURL), got 'ftp://fletcher.example'"), ["PUBLIC_URL": "ftp://fletcher.example"])
        for value in ["0", "1001", "ten", "2.5"] {
            expectError(ConfigurationError("MAX_CONNECTIONS", "expected a whole number from 1 to 1000, got '\(value)'"), ["MAX_CONNECTIONS": value])
        }
        expectError(
            ConfigurationError("LOG_LEVEL", "expected one of trace, debug, info, notice, warning, error, critical, got 'loud'"),
            ["LOG_LEVEL": "loud"])
        expectError(ConfigurationError("LOG_FORMAT", "expected text or json, got 'xml'"), ["LOG_FORMAT": "xml"])
        for value in ["1023", "17179869185", "big"] { number("MAX_BODY_BYTES", "1024.0 to 17179869184.0", value) }
        for value in ["0", "1000001", "-5"] { number("MAX_CONCURRENT_REQUESTS", "1.0 to 1000000.0", value) }
        for value in ["0.5", "86401", "nan"] { number("IDLE_TIMEOUT_S", "1.0 to 86400.0", value) }
        for value in ["0.4", "3601", "soon"] { number("HEADER_TIMEOUT_S", "0.5 to 3600.0", value) }
        for value in ["0.05", "3601", "inf"] { number("DATABASE_TIMEOUT_S", "0.1 to 3600.0", value) }
        for value in ["0.5", "86401", "never"] { number("DATABASE_QUERY_TIMEOUT_S", "1.0 to 86400.0", value) }
        expectError(ConfigurationError("DATABASE_POOLER", "expected none or transaction, got 'session'"), ["DATABASE_POOLER": "session"])
        expectError(
            ConfigurationError("DATABASE_LISTEN_URL", "is for PostgreSQL only; DATABASE_URL names SQLite file fletcher.sqlite"),
            ["DATABASE_LISTEN_URL": "postgres://db/fletcher"])
        expectError(
            ConfigurationError(
                "DATABASE_LISTEN_URL", "expected a postgres:// URL straight to the server, got 'mysql://u:***@db/fletcher'"),
            ["DATABASE_URL": "postgres://pooler/fletcher", "DATABASE_LISTEN_URL": "mysql://u:secret@db/fletcher"])
        for value in ["-1", "100000001", "many"] { number("PLAN_CACHE_PRODUCTS", "0.0 to 100000000.0", value) }
        for value in ["dispatch.after_claim", "dispatch.after_claim=stop", "dispatch.before_claim=kill", "dispatch.after_send=kill,x"] {
            expectError(
                ConfigurationError(
                    "FLETCHER_FAILPOINTS",
                    "expected point=kill[,point=kill…] with points dispatch.after_claim, dispatch.after_send, got '\(value)'"),
                ["FLETCHER_FAILPOINTS": value])
        }
        expectError(
            ConfigurationError("REMOTE_APIS", "SECRET_KEY is set but REMOTE_APIS is not; set both, or neither for development mode"),
            ["SECRET_KEY": secret])
        expectError(
            ConfigurationError("SECRET_KEY", "REMOTE_APIS is set but SECRET_KEY is not; set both, or neither for development mode"),
            ["REMOTE_APIS": "[]"])
        expectError(
            ConfigurationError("SECRET_KEY", "must be at least 32 bytes long (HS256 needs a 256-bit key); it has 5"),
            ["SECRET_KEY": "short", "REMOTE_APIS": "[]"])
        func remoteAPIs(_ problem: String, _ value: String) {
            expectError(ConfigurationError("REMOTE_APIS", problem), ["SECRET_KEY": secret, "REMOTE_APIS": value])
        }
        remoteAPIs(#"expected a JSON list of {"service", "hash", "roles"} objects"#, "{")
        remoteAPIs(#"expected a JSON list of {"service", "hash", "roles"} objects"#, #"{"service": "a"}"#)
        remoteAPIs("entry 0 is not an object", "[1]")
        remoteAPIs(#"entry 0 has no "service" name"#, #"[{"hash": "\#(hash)", "roles": []}]"#)
        remoteAPIs(
            #"service 'a': "hash" must be a bcrypt hash ($2a$, $2b$ or $2y$); make one with `fletcher hash-key`"#,
            #"[{"service": "a", "hash": "plain", "roles": []}]"#)
        remoteAPIs(#"service 'a': "roles" must be a list of role names"#, #"[{"service": "a", "hash": "\#(hash)", "roles": "publish"}]"#)
        remoteAPIs(
            "service 'a': unknown role 'admin' (roles are \(Role.allCases.map(\.rawValue).joined(separator: ", ")))",
            #"[{"service": "a", "hash": "\#(hash)", "roles": ["admin"]}]"#)
        remoteAPIs("service 'a' is listed twice", #"[{"service": "a", "hash": "\#(hash)"}, {"service": "a", "hash": "\#(hash)"}]"#)
        expectError(ConfigurationError(".env", "line 1 is not KEY=value"), [:], dotEnv: "NOT A LINE")
        expectError(ConfigurationError(".env", "the quoted value of A is never closed"), [:], dotEnv: "A='never closed")
    }

    @Test func computeTargetsAndPublicURL() throws {
        let configuration = try load([
            "BASE_URL": "0.0.0.0:8080",
            "COMPUTE_TARGETS": #"{"cams": {"url": "http://cams.example/jobs", "headers": {"Authorization": "Bearer x"}, "max_in_flight": 2, "timeout_s": 1.5, "max_attempts": 3, "max_age_s": 60}, "dbxaas": {"url": "https://dbx.example/run"}}"#,
        ])
        let cams = try #require(configuration.computeTargets[.cams])
        #expect(cams.url?.absoluteString == "http://cams.example/jobs")
        #expect(cams.headers == ["Authorization": "Bearer x"])
        #expect(cams.maxInFlight == 2 && cams.timeout == 1.5 && cams.maxAttempts == 3 && cams.maxAge == 60)
        let dbx = try #require(configuration.computeTargets[.dbxaas])
        #expect(dbx.maxInFlight == 8 && dbx.timeout == 15 && dbx.maxAttempts == 25 && dbx.maxAge == 86_400)
        #expect(configuration.publicURL == "http://0.0.0.0:8080")
        #expect(try load(["PUBLIC_URL": "https://fletcher.example"]).publicURL == "https://fletcher.example")
        #expect(try load([:]).computeTargets.isEmpty)
        // No policies unless configured.
        #expect(cams.retries == nil && cams.maxQueued == nil && cams.maxRunning == nil && cams.cancelURL == nil)
        #expect(configuration.computeTargets.policy.computes[.cams] == ComputePolicy())
    }

    /// Retries, timeouts and cancels per compute type; a type may have policies and no `url`: it is
    /// not dispatched, and its policies still reach the store.
    @Test func computeTargetsCarryRetryTimeoutAndCancelPolicies() throws {
        let configuration = try load([
            "COMPUTE_TARGETS": #"""
                {"cams": {"url": "http://cams.example/jobs", "cancel_url": "https://cams.example/cancel",
                          "retries": {"max": 3, "delay_s": 10, "max_delay_s": 120}, "max_queued_s": 300, "max_running_s": 3600.5},
                 "dbxaas": {"retries": {"max": 0}, "max_running_s": 60}}
                """#,
        ])
        let cams = try #require(configuration.computeTargets[.cams])
        #expect(cams.cancelURL?.absoluteString == "https://cams.example/cancel")
        #expect(cams.retries == RetryPolicy(max: 3, delay: 10, maxDelay: 120))
        #expect(cams.maxQueued == 300 && cams.maxRunning == 3600.5)
        let dbx = try #require(configuration.computeTargets[.dbxaas])
        #expect(dbx.url == nil && dbx.cancelURL == nil)
        #expect(dbx.retries == RetryPolicy(max: 0, delay: 30, maxDelay: 600))
        #expect(dbx.maxQueued == nil && dbx.maxRunning == 60)
        #expect(configuration.computeTargets.dispatched.keys.map(\.rawValue) == ["cams"])
        let policy = configuration.computeTargets.policy
        #expect(policy.computes[.cams] == ComputePolicy(retries: cams.retries, maxQueued: 300, maxRunning: 3600.5, cancels: true))
        #expect(policy.computes[.dbxaas] == ComputePolicy(retries: dbx.retries, maxRunning: 60, cancels: false))
        // A first wait beyond the default cap raises the cap; the ends of the ranges are taken.
        let wide = try load([
            "COMPUTE_TARGETS": #"{"cams": {"retries": {"max": 100, "delay_s": 86400}, "max_queued_s": 31536000, "max_running_s": 0.001}}"#
        ]).computeTargets[.cams]
        #expect(wide?.retries == RetryPolicy(max: 100, delay: 86_400, maxDelay: 86_400))
        #expect(wide?.maxQueued == 31_536_000 && wide?.maxRunning == 0.001)
        let capped = try load(["COMPUTE_TARGETS": #"{"cams": {"retries": {"max": 2.0, "delay_s": 0.5, "max_delay_s": 604800}}}"#])
        #expect(capped.computeTargets[.cams]?.retries == RetryPolicy(max: 2, delay: 0.5, maxDelay: 604_800))
    }

    @Test func badComputeTargetsNameTheVariableAndTheProblem() {
        func targets(_ problem: String, _ value: String) {
            expectError(ConfigurationError("COMPUTE_TARGETS", problem), ["COMPUTE_TARGETS": value])
        }
        let shape = #"expected a JSON object keyed by compute type, each {"url"?, "cancel_url"?, "headers"?, "max_in_flight"?, "timeout_s"?, "max_attempts"?, "max_age_s"?, "retries"?, "max_queued_s"?, "max_running_s"?}"#
        targets(shape, "[]")
        targets(shape, "{")
        targets(shape + "; wrong or missing: cams.url", #"{"cams": {"url": 1}}"#)
        targets(shape + "; wrong or missing: cams.cancel_url", #"{"cams": {"url": "http://x", "cancel_url": ["http://y"]}}"#)
        targets(shape + "; wrong or missing: cams.headers.a", #"{"cams": {"url": "http://x", "headers": {"a": 1}}}"#)
        targets(shape + "; wrong or missing: cams.timeout_s", #"{"cams": {"url": "http://x", "timeout_s": "long"}}"#)
        targets(
            "unknown compute type 'lambda' (types are \(Compute.allCases.map(\.rawValue).joined(separator: ", ")))",
            #"{"lambda": {"url": "http://x"}}"#)
        targets(#"cams: "url" must be an http(s) URL"#, #"{"cams": {"url": "ftp://x"}}"#)
        targets(#"cams: "url" must be an http(s) URL"#, #"{"cams": {"url": "http://"}}"#)
        targets(#"cams: "max_in_flight" must be at least 1.0"#, #"{"cams": {"url": "http://x", "max_in_flight": 0}}"#)
        targets(#"cams: "timeout_s" must be at least 0.1"#, #"{"cams": {"url": "http://x", "timeout_s": 0.05}}"#)
        targets(#"cams: "max_attempts" must be at least 1.0"#, #"{"cams": {"url": "http://x", "max_attempts": 0}}"#)
        targets(#"cams: "max_age_s" must be at least 1.0"#, #"{"cams": {"url": "http://x", "max_age_s": 0.5}}"#)

        // Policies: every bad value names the type and the key.
        targets(#"cams: set "url", or a policy ("retries", "max_queued_s", "max_running_s")"#, #"{"cams": {}}"#)
        targets(#"cams: set "url", or a policy ("retries", "max_queued_s", "max_running_s")"#, #"{"cams": {"retries": null}}"#)
        targets(#"cams: "cancel_url" must be an http(s) URL"#, #"{"cams": {"url": "http://x", "cancel_url": "ftp://y"}}"#)
        targets(#"cams: "cancel_url" must be an http(s) URL"#, #"{"cams": {"url": "http://x", "cancel_url": "/cancel"}}"#)
        targets(#"cams: "cancel_url" needs "url" (a cancel stops a job a trigger started)"#, #"{"cams": {"cancel_url": "http://y", "max_running_s": 5}}"#)
        let retriesMax = #"dbxaas: "retries.max" must be an integer from 0 to 100"#
        for max in ["2.5", #""3""#, "-1", "101", "1e300", "true", "null", "[]"] {
            targets(retriesMax, #"{"dbxaas": {"url": "http://x", "retries": {"max": \#(max)}}}"#)
        }
        targets(retriesMax, #"{"dbxaas": {"url": "http://x", "retries": {"delay_s": 5}}}"#)
        targets(#"dbxaas: "retries" must be an object {"max", "delay_s"?, "max_delay_s"?}"#, #"{"dbxaas": {"url": "http://x", "retries": 3}}"#)
        targets(
            #"dbxaas: "retries" has an unknown key "delay" (keys are max, delay_s, max_delay_s)"#,
            #"{"dbxaas": {"url": "http://x", "retries": {"max": 3, "delay": 5}}}"#)
        let delay = #"cams: "retries.delay_s" must be a number of seconds above 0 and at most 86400 (a day)"#
        for value in ["0", "-1", "86401", #""30""#] {
            targets(delay, #"{"cams": {"retries": {"max": 1, "delay_s": \#(value)}}}"#)
        }
        for (value, delaySeconds) in [("9", "10"), ("604801", "30"), ("{}", "30")] {
            let given = delaySeconds == "30" ? "" : #", "delay_s": \#(delaySeconds)"#
            targets(
                #"cams: "retries.max_delay_s" must be a number of seconds from "retries.delay_s" (\#(delaySeconds)) to 604800 (a week)"#,
                #"{"cams": {"retries": {"max": 1\#(given), "max_delay_s": \#(value)}}}"#)
        }
        for key in ["max_queued_s", "max_running_s"] {
            for value in ["0", "-5", "31536001", #""60""#, "false", "{}"] {
                targets(
                    #"cams: "\#(key)" must be a number of seconds above 0 and at most 31536000 (a year)"#,
                    #"{"cams": {"url": "http://x", "\#(key)": \#(value)}}"#)
            }
        }
    }

    /// `WEBHOOKS` and `OPENLINEAGE_*`: every bad value stops start-up naming its variable; the
    /// messages themselves are FletcherDispatch's (WebhookEndpointTests, OpenLineageSettingsTests).
    @Test func badWebhooksAndLineageSettingsNameTheVariable() throws {
        expectError(
            ConfigurationError("WEBHOOKS", #"expected a JSON list of {"url", "secret"?, "events", "datasets"?, "format"?, "max_in_flight"?} objects"#),
            ["WEBHOOKS": #"{"url": "https://x"}"#])
        expectError(
            ConfigurationError("WEBHOOKS", #"entry 0: "secret" is required for the standard format (whsec_ and base64 of 24 to 64 random bytes)"#),
            ["WEBHOOKS": #"[{"url": "https://x", "events": ["*"]}]"#])
        expectError(
            ConfigurationError(
                "OPENLINEAGE_URL",
                "expected an http(s) URL such as http://marquez.example:5000 (events go to {url}/api/v1/lineage), got 'marquez.example'"),
            ["OPENLINEAGE_URL": "marquez.example"])
        expectError(
            ConfigurationError("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY is set but OPENLINEAGE_URL is not; set it to send lineage"),
            ["OPENLINEAGE_API_KEY": "k"])
        expectError(
            ConfigurationError("OPENLINEAGE_NAMESPACE", "expected a name without spaces or control characters, got 'a b'"),
            ["OPENLINEAGE_URL": "http://m.example", "OPENLINEAGE_NAMESPACE": "a b"])
        // From the .env file too; an empty list is no webhook.
        let configuration = try load([:], dotEnv: "WEBHOOKS=[]\nOPENLINEAGE_URL=https://lineage.example\n")
        #expect(configuration.webhooks.isEmpty)
        #expect(configuration.openLineage == OpenLineageSettings(url: URL(string: "https://lineage.example")!))
    }

    @Test func tracesAreOffUnlessAnEndpointOrTheOTLPExporterIsSet() throws {
        #expect(try load([:]).tracing == nil)
        #expect(try load(["OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"]).tracing == nil)
        #expect(try load(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"]).tracing == nil)
        #expect(try load(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"]).tracing == nil)
        // The standard's default endpoint, and the base URL's signal path.
        #expect(try load(["OTEL_TRACES_EXPORTER": "otlp"]).tracing?.endpoint == "http://localhost:4318/v1/traces")
        #expect(try load(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"]).tracing?.endpoint == "http://c:4318/v1/traces")
        #expect(try load(["OTEL_EXPORTER_OTLP_ENDPOINT": "https://c/otlp"]).tracing?.endpoint == "https://c/otlp/v1/traces")
        // The traces' own endpoint is used as it is, and wins.
        #expect(
            try load(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"]).tracing?.endpoint
                == "http://t:1/x")
    }

    @Test func traceSettingsAreReadFromTheStandardVariables() throws {
        let tracing = try #require(
            try load(
                [
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SERVICE_NAME": "orchestrator",
                    "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=data%20platform",
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1",
                    "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,x-tenant=t%201", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_PROPAGATORS": "none", "OTEL_BSP_SCHEDULE_DELAY": "100",
                    "OTEL_BSP_MAX_QUEUE_SIZE": "8192", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1024", "OTEL_BSP_EXPORT_TIMEOUT": "5000",
                ],
                dotEnv: "OTEL_EXPORTER_OTLP_COMPRESSION=none\n"
            ).tracing)
        #expect(tracing.serviceName == "orchestrator")
        #expect(tracing.resourceAttributes == ["deployment.environment": "prod", "team": "data platform"])
        #expect(tracing.sampler == .parentBasedTraceIDRatio(0.1))
        #expect(tracing.headers.map { "\($0.0)=\($0.1)" } == ["api-key=abc", "x-tenant=t 1"])
        #expect(tracing.timeout == .milliseconds(2500))
        #expect(!tracing.propagates)
        #expect(tracing.scheduleDelay == .milliseconds(100) && tracing.exportTimeout == .milliseconds(5000))
        #expect(tracing.maxQueueSize == 8192 && tracing.maxExportBatchSize == 1024)
        // The defaults: every request sampled unless its caller's trace is not, W3C trace context.
        let defaults = try #require(try load(["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"]).tracing)
        #expect(defaults.serviceName == "fletcher" && defaults.sampler == .parentBasedAlwaysOn && defaults.propagates)
        #expect(try load(["OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio"]).tracing?.sampler == .traceIDRatio(1))
    }

    @Test func traceSettingsFletcherCannotHonourStopStartUp() {
        let on = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"]
        func bad(_ variable: String, _ value: String, _ problem: String, sourceLocation: SourceLocation = #_sourceLocation) {
            expectError(ConfigurationError(variable, problem), on.merging([variable: value]) { $1 }, sourceLocation: sourceLocation)
        }
        bad("OTEL_SDK_DISABLED", "yes", "expected true or false, got 'yes'")
        bad("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "c:4318", "expected an http(s) URL such as http://collector:4318/v1/traces, got 'c:4318'")
        bad(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc",
            "OTLP over gRPC is not built into Fletcher; use http/protobuf and the collector's HTTP port (4318), got 'grpc'")
        bad("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "expected http/protobuf (the only encoding Fletcher sends), got 'http/json'")
        bad("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", "expected none (spans are sent uncompressed), got 'gzip'")
        bad("OTEL_EXPORTER_OTLP_HEADERS", "api-key", "expected key=value pairs separated by commas, got 'api-key'")
        bad("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "expected a whole number of milliseconds, at least 1, got '10s'")
        bad("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "cannot read the file '/nonexistent/ca.pem'")
        bad("OTEL_PROPAGATORS", "b3", "expected tracecontext or none (Fletcher reads and sends W3C traceparent only), got 'b3'")
        bad(
            "OTEL_TRACES_SAMPLER", "jaeger_remote",
            "expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio, "
                + "got 'jaeger_remote'")
        expectError(
            ConfigurationError("OTEL_TRACES_SAMPLER_ARG", "expected a sampling ratio from 0 to 1, got '10%'"),
            on.merging(["OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"]) { $1 })
        bad("OTEL_BSP_MAX_QUEUE_SIZE", "0", "expected a whole number of spans, at least 1, got '0'")
        bad("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096", "must be at most OTEL_BSP_MAX_QUEUE_SIZE (2048), got 4096")
        // Checked with traces off too: turning them on must not find a value wrong.
        expectError(
            ConfigurationError("OTEL_TRACES_EXPORTER", "expected otlp or none (Fletcher sends spans as OTLP over HTTP), got 'console'"),
            ["OTEL_TRACES_EXPORTER": "console"])
        expectError(
            ConfigurationError("OTEL_PROPAGATORS", "expected tracecontext or none (Fletcher reads and sends W3C traceparent only), got 'b3'"),
            ["OTEL_PROPAGATORS": "b3", "OTEL_SDK_DISABLED": "true"])
    }

    @Test func dotEnvParsing() throws {
        let values = try DotEnv.parse("A=1\n\n  B = two words \nC=\"x\\ny\\\"z\"\nD='a #b'\nE=\n")
        #expect(values == ["A": "1", "B": "two words", "C": "x\ny\"z", "D": "a #b", "E": ""])
    }

    @Test func developmentModeMakesOneServiceWithEveryRole() async throws {
        let credentials = try await ServiceCredentials(.development, bcrypt: BcryptVerifier(threads: 1))
        let key = try #require(credentials.developmentKey)
        #expect(credentials.accounts.count == 1)
        #expect(credentials.accounts[0].service == "local")
        #expect(credentials.accounts[0].roles == Set(Role.allCases))
        #expect(Bcrypt.verify(key, hash: credentials.accounts[0].hash))
        #expect(credentials.secret.utf8.count >= 32)
        #expect(credentials.developmentBanner?.contains(key) == true)
        #expect(credentials.developmentBanner?.contains("WARNING") == true)
    }
}
