import FletcherDomain
public import FletcherHTTP
import Foundation

/// The secret and services in effect, with the development key when they were made up at start-up.
public struct ServiceCredentials: Sendable {
    public var secret: String
    public var accounts: [ServiceAccount]
    /// The key of the development service `local`, to be shown once; nil when configured.
    public var developmentKey: String?

    public init(_ services: AppConfiguration.Services, bcrypt: BcryptVerifier) async throws {
        switch services {
        case .configured(let secret, let accounts):
            self.secret = secret
            self.accounts = accounts
            developmentKey = nil
        case .development:
            let key = Self.randomToken(bytes: 24)
            secret = Self.randomToken(bytes: 48)
            accounts = [
                ServiceAccount(service: "local", hash: try await bcrypt.hash(key, cost: 10), roles: Set(Role.allCases))
            ]
            developmentKey = key
        }
    }

    /// The warning printed once when running in development mode.
    public var developmentBanner: String? {
        guard let developmentKey else { return nil }
        return """
            ************************************************************************
            WARNING: Fletcher is running in DEVELOPMENT MODE: neither SECRET_KEY nor
            REMOTE_APIS is set. Tokens are signed with a random secret (they stop
            working when Fletcher restarts) and one service has every role:

                service: local
                key:     \(developmentKey)

            Set SECRET_KEY and REMOTE_APIS (see `fletcher hash-key`) for anything
            but local development.
            ************************************************************************
            """
    }

    static func randomToken(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
