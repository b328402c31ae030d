import FletcherApp
import FletcherDispatch
import FletcherDomain
import FletcherHTTP
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

    func expectError(_ variable: String, _ environment: [String: String], dotEnv: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try load(environment, dotEnv: dotEnv)
            Issue.record("expected a configuration error for \(variable)", sourceLocation: sourceLocation)
        } catch let error as ConfigurationError {
            #expect(error.variable == variable, sourceLocation: sourceLocation)
            #expect(error.description.contains(variable), sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func defaultsAreTheEmbeddedDatabaseOnLocalhostInDevelopmentMode() throws {
        let configuration = try load([:])
        #expect(configuration.database == .sqliteFile("fletcher.sqlite"))
        #expect(configuration.listen == ListenAddress(host: "127.0.0.1", port: 3000))
        #expect(configuration.maxConnections == 10)
        #expect(configuration.planCacheProducts == 50_000)
        #expect(configuration.logLevel == .info)
        guard case .development = configuration.services else { Issue.record("expected development mode"); return }
    }

    @Test func everyVariableIsRead() throws {
        let configuration = try load([
            "DATABASE_URL": "postgres://u:p@db:5433/fletcher", "BASE_URL": "http://0.0.0.0:8080", "MAX_CONNECTIONS": "25",
            "LOG_LEVEL": "DEBUG", "SECRET_KEY": secret, "PLAN_CACHE_PRODUCTS": "1000",
            "REMOTE_APIS": #"[{"service": "svc", "hash": "\#(hash)", "roles": ["publish", "update"]}]"#,
        ])
        #expect(configuration.database == .postgres("postgres://u:p@db:5433/fletcher"))
        #expect(configuration.listen == ListenAddress(host: "0.0.0.0", port: 8080))
        #expect(configuration.maxConnections == 25)
        #expect(configuration.planCacheProducts == 1000)
        #expect(configuration.logLevel == .debug)
        guard case .configured(let configuredSecret, let accounts) = configuration.services else {
            Issue.record("expected configured services")
            return
        }
        #expect(configuredSecret == secret)
        #expect(accounts == [ServiceAccount(service: "svc", hash: hash, roles: [.publish, .update])])
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

    @Test func everyBadValueNamesItsVariable() {
        expectError("DATABASE_URL", ["DATABASE_URL": "mysql://x"])
        expectError("DATABASE_URL", ["DATABASE_URL": "sqlite:"])
        expectError("BASE_URL", ["BASE_URL": "localhost"])
        expectError("BASE_URL", ["BASE_URL": "localhost:99999"])
        expectError("BASE_URL", ["BASE_URL": "https://x:1"])
        expectError("MAX_CONNECTIONS", ["MAX_CONNECTIONS": "0"])
        expectError("MAX_CONNECTIONS", ["MAX_CONNECTIONS": "ten"])
        expectError("LOG_LEVEL", ["LOG_LEVEL": "loud"])
        expectError("PLAN_CACHE_PRODUCTS", ["PLAN_CACHE_PRODUCTS": "-1"])
        expectError("PLAN_CACHE_PRODUCTS", ["PLAN_CACHE_PRODUCTS": "many"])
        expectError("REMOTE_APIS", ["SECRET_KEY": secret])
        expectError("SECRET_KEY", ["REMOTE_APIS": "[]"])
        expectError("SECRET_KEY", ["SECRET_KEY": "short", "REMOTE_APIS": "[]"])
        expectError("REMOTE_APIS", ["SECRET_KEY": secret, "REMOTE_APIS": "{"])
        expectError("REMOTE_APIS", ["SECRET_KEY": secret, "REMOTE_APIS": #"[{"service": "a", "hash": "plain", "roles": []}]"#])
        expectError("REMOTE_APIS", ["SECRET_KEY": secret, "REMOTE_APIS": #"[{"service": "a", "hash": "\#(hash)", "roles": ["admin"]}]"#])
        expectError("REMOTE_APIS", ["SECRET_KEY": secret, "REMOTE_APIS": #"[{"hash": "\#(hash)", "roles": []}]"#])
        expectError(
            "REMOTE_APIS",
            ["SECRET_KEY": secret, "REMOTE_APIS": #"[{"service": "a", "hash": "\#(hash)"}, {"service": "a", "hash": "\#(hash)"}]"#])
        expectError(".env", [:], dotEnv: "NOT A LINE")
        expectError(".env", [:], dotEnv: "A='never closed")
    }

    @Test func computeTargetsAndPublicURL() throws {
        let configuration = try load([
            "BASE_URL": "0.0.0.0:8080",
            "COMPUTE_TARGETS": #"{"cams": {"url": "http://cams.example/jobs", "headers": {"Authorization": "Bearer x"}, "max_in_flight": 2, "timeout_s": 1.5, "max_attempts": 3, "max_age_s": 60}, "dbxaas": {"url": "https://dbx.example/run"}}"#,
        ])
        let cams = try #require(configuration.computeTargets[.cams])
        #expect(cams.url.absoluteString == "http://cams.example/jobs")
        #expect(cams.headers == ["Authorization": "Bearer x"])
        #expect(cams.maxInFlight == 2 && cams.timeout == 1.5 && cams.maxAttempts == 3 && cams.maxAge == 60)
        let dbx = try #require(configuration.computeTargets[.dbxaas])
        #expect(dbx.maxInFlight == 8 && dbx.timeout == 15 && dbx.maxAttempts == 25 && dbx.maxAge == 86_400)
        #expect(configuration.publicURL == "http://0.0.0.0:8080")
        #expect(try load(["PUBLIC_URL": "https://fletcher.example"]).publicURL == "https://fletcher.example")
        #expect(try load([:]).computeTargets.isEmpty)
    }

    @Test func badComputeTargetsNameTheVariable() {
        expectError("COMPUTE_TARGETS", ["COMPUTE_TARGETS": "[]"])
        expectError("COMPUTE_TARGETS", ["COMPUTE_TARGETS": #"{"lambda": {"url": "http://x"}}"#])
        expectError("COMPUTE_TARGETS", ["COMPUTE_TARGETS": #"{"cams": {"url": "ftp://x"}}"#])
        expectError("COMPUTE_TARGETS", ["COMPUTE_TARGETS": #"{"cams": {"url": "http://x", "max_in_flight": 0}}"#])
        expectError("COMPUTE_TARGETS", ["COMPUTE_TARGETS": #"{"cams": {"url": "http://x", "headers": {"a": 1}}}"#])
        expectError("PUBLIC_URL", ["PUBLIC_URL": "fletcher.example"])
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
